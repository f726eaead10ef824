#include "topicbridge/jetstream_sink.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "nats_connection.h"

namespace topicbridge {

namespace {

struct PendingPublish {
  std::string subject;
  PublishCallback done;
};

std::string NoStreamMessage(const std::string& subject) {
  return "no JetStream stream captures subject " + subject +
         ": create one, e.g. `nats stream add TOPICBRIDGE --subjects '" + subject +
         "' --storage file --dupe-window 2m --defaults`";
}

class JetStreamSink final : public Sink {
 public:
  JetStreamSink(const NatsOptions& options, SinkEvents events, JetStreamLimits limits)
      : subject_(options.subject), limits_(limits), connection_(options, std::move(events)) {
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.PublishAsync.MaxPending = limits_.max_pending;
    js_options.PublishAsync.StallWait = limits_.stall_wait_ms;
    js_options.PublishAsync.AckHandler = &JetStreamSink::OnAck;
    js_options.PublishAsync.AckHandlerClosure = this;
    const natsStatus s = natsConnection_JetStream(&js_, connection_.get(), &js_options);
    if (s != NATS_OK) {
      throw SinkConfigError({{"", "nats: JetStream context: " + connection_.Describe(s)}});
    }
  }

  ~JetStreamSink() override {
    Flush(std::chrono::milliseconds(2000));
    closing_ = true;
    // Take back what the library still holds; its acks will be discarded. Only after a
    // publish: cnats 3.4 reads its pending map, made by the first async publish, unchecked.
    bool published = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      published = !pending_.empty();
    }
    natsMsgList pending{};
    if (published && js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK)
      natsMsgList_Destroy(&pending);
    while (handlers_running_.load() > 0) std::this_thread::yield();
    std::map<natsMsg*, PendingPublish> left;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      left.swap(pending_);
    }
    for (auto& [msg, p] : left)
      p.done({false, true, "nats: sink closed before the PubAck arrived"});
    jsCtx_Destroy(js_);
  }

  void Publish(OutboundMessage message, PublishCallback done) override {
    const std::string subject = message.subject.empty() ? subject_ : message.subject;
    if (!connection_.Connected()) {
      done({false, true, "nats: not connected to " + connection_.url()});
      return;
    }
    std::string error;
    natsMsg* msg = connection_.NewMessage(subject, message.body, "", &error);
    if (msg == nullptr) {
      done({false, false, error});
      return;
    }
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = limits_.ack_wait_ms;
    if (!message.msg_id.empty()) options.MsgId = message.msg_id.c_str();
    natsMsg* key = msg;
    {
      // Registered before publishing: the ack may arrive before the call returns.
      std::lock_guard<std::mutex> lock(mutex_);
      pending_[key] = PendingPublish{subject, std::move(done)};
    }
    const natsStatus s = js_PublishMsgAsync(js_, &msg, &options);
    if (s == NATS_OK) return;            // the library owns msg now (msg == nullptr)
    PublishCallback failed = Take(key);  // before freeing: the address may be reused
    natsMsg_Destroy(msg);
    const std::string reason = s == NATS_TIMEOUT ? "too many messages awaiting a PubAck (" +
                                                       std::to_string(limits_.max_pending) + ")"
                                                 : connection_.Describe(s);
    if (failed) failed({false, true, "nats: JetStream publish to " + subject + ": " + reason});
  }

  bool Connected() const override { return connection_.Connected(); }

  void Flush(std::chrono::milliseconds timeout) override {
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = std::max<int64_t>(1, timeout.count());
    js_PublishAsyncComplete(js_, &options);
  }

 private:
  PublishCallback Take(natsMsg* key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pending_.find(key);
    if (it == pending_.end()) return {};
    PublishCallback done = std::move(it->second.done);
    pending_.erase(it);
    return done;
  }

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<JetStreamSink*>(closure);
    self->handlers_running_.fetch_add(1);
    if (!self->closing_.load()) self->Complete(msg, ack, error);
    natsMsg_Destroy(msg);
    self->handlers_running_.fetch_sub(1);
  }

  void Complete(natsMsg* msg, jsPubAck* ack, jsPubAckErr* error) {
    std::string subject;
    PublishCallback done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = pending_.find(msg);
      if (it == pending_.end()) return;
      subject = std::move(it->second.subject);
      done = std::move(it->second.done);
      pending_.erase(it);
    }
    if (ack != nullptr) {
      done({true, true, ""});
      return;
    }
    PublishResult result{false, true, ""};
    if (error == nullptr) {
      result.error = "nats: JetStream publish to " + subject + ": no PubAck";
    } else if (error->Err == NATS_NO_RESPONDERS) {
      result.error = NoStreamMessage(subject);
    } else if (error->Err == NATS_TIMEOUT) {
      result.error = "nats: no JetStream PubAck for subject " + subject + " within " +
                     std::to_string(limits_.ack_wait_ms) + " ms";
    } else {
      result.error = "nats: JetStream publish to " + subject + " failed: " +
                     (error->ErrText != nullptr ? std::string(error->ErrText)
                                                : connection_.Describe(error->Err));
      if (error->ErrCode != 0) result.error += " (err_code " + std::to_string(error->ErrCode) + ")";
      result.retriable = error->Err != NATS_MAX_PAYLOAD;
    }
    done(result);
  }

  const std::string subject_;
  const JetStreamLimits limits_;
  sinks::NatsConnection connection_;
  jsCtx* js_ = nullptr;

  std::mutex mutex_;
  std::map<natsMsg*, PendingPublish> pending_;  // GUARDED_BY(mutex_)
  std::atomic<bool> closing_{false};
  std::atomic<int> handlers_running_{0};
};

}  // namespace

std::unique_ptr<Sink> MakeJetStreamSink(const NatsOptions& options, SinkEvents events,
                                        JetStreamLimits limits) {
  return std::make_unique<JetStreamSink>(options, std::move(events), limits);
}

}  // namespace topicbridge
