#include "topicbridge/jetstream_sink.h"

#include <atomic>
#include <functional>
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
      : subject_(options.subject),
        limits_(limits),
        on_error_(events.on_error),
        connection_(options, std::move(events),
                    [this](natsConnection* nc) { CreateContext(nc); }) {}

  ~JetStreamSink() override {
    connection_.StopConnecting();  // no context may appear while this tears down
    Flush(std::chrono::milliseconds(2000));
    closing_ = true;
    // Take back what the library still holds; its acks will be discarded. Only after a
    // publish: cnats 3.4 reads its pending map, made by the first async publish, unchecked.
    bool published = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      published = !pending_.empty();
    }
    jsCtx* js = js_.load();
    natsMsgList pending{};
    if (published && js != nullptr && js_PublishAsyncGetPendingList(&pending, js) == NATS_OK)
      natsMsgList_Destroy(&pending);
    while (handlers_running_.load() > 0) std::this_thread::yield();
    std::map<natsMsg*, PendingPublish> left;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      left.swap(pending_);
    }
    for (auto& [msg, p] : left)
      p.done({false, true, "nats: sink closed before the PubAck arrived"});
    jsCtx_Destroy(js);
  }

  void Publish(OutboundMessage message, PublishCallback done) override {
    const std::string subject = message.subject.empty() ? subject_ : message.subject;
    jsCtx* js = js_.load(std::memory_order_acquire);
    if (js == nullptr || !connection_.Connected()) {
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
    const natsStatus s = js_PublishMsgAsync(js, &msg, &options);
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
    jsCtx* js = js_.load(std::memory_order_acquire);
    if (js == nullptr) return;
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = std::max<int64_t>(1, timeout.count());
    js_PublishAsyncComplete(js, &options);
  }

 private:
  // Runs once, when the connection is first established (before Connected()).
  void CreateContext(natsConnection* nc) {
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.PublishAsync.MaxPending = limits_.max_pending;
    js_options.PublishAsync.StallWait = limits_.stall_wait_ms;
    js_options.PublishAsync.AckHandler = &JetStreamSink::OnAck;
    js_options.PublishAsync.AckHandlerClosure = this;
    jsCtx* js = nullptr;
    const natsStatus s = natsConnection_JetStream(&js, nc, &js_options);
    if (s != NATS_OK) {
      // Publishing then fails as "not connected" and is retried; say why once.
      if (on_error_) on_error_("nats: cannot create a JetStream context: " + connection_.Describe(s));
      return;
    }
    js_.store(js, std::memory_order_release);
  }

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

  // Declared before connection_: its constructor may already call CreateContext,
  // and its destructor (first to run) ends the callbacks that use these.
  const std::string subject_;
  const JetStreamLimits limits_;
  const std::function<void(const std::string&)> on_error_;
  std::atomic<jsCtx*> js_{nullptr};
  std::mutex mutex_;
  std::map<natsMsg*, PendingPublish> pending_;  // GUARDED_BY(mutex_)
  std::atomic<bool> closing_{false};
  std::atomic<int> handlers_running_{0};

  sinks::NatsConnection connection_;
};

}  // namespace

std::unique_ptr<Sink> MakeJetStreamSink(const NatsOptions& options, SinkEvents events,
                                        JetStreamLimits limits) {
  return std::make_unique<JetStreamSink>(options, std::move(events), limits);
}

}  // namespace topicbridge
