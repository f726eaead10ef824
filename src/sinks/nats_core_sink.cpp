#include <memory>

#include "nats_connection.h"
#include "parameter_schema.h"
#include "topicbridge/nats_sink.h"

namespace topicbridge {

NatsOptions NatsOptionsFrom(const DestinationConfig& destination) {
  NatsOptions o;
  o.url = sinks::StringParameter(destination, "url");
  o.subject = sinks::StringParameter(destination, "subject");
  o.connection_name =
      sinks::StringParameter(destination, "connectionName", "topicbridge-" + destination.id);
  o.credentials_file_path = sinks::StringParameter(destination, "credentialsFilePath");
  o.nkey_seed_file_path = sinks::StringParameter(destination, "nkeySeedFilePath");
  o.username = sinks::StringParameter(destination, "username");
  o.password = sinks::StringParameter(destination, "password");
  o.tls = sinks::StringParameter(destination, "sslContext", "none") == "tls" ||
          o.url.find("tls://") != std::string::npos;
  o.tls_ca_file = sinks::StringParameter(destination, "tlsCaFile");
  o.tls_cert_file = sinks::StringParameter(destination, "tlsCertFile");
  o.tls_key_file = sinks::StringParameter(destination, "tlsKeyFile");
  return o;
}

namespace {

class NatsCoreSink final : public Sink {
 public:
  NatsCoreSink(const NatsOptions& options, SinkEvents events)
      : subject_(options.subject), connection_(options, std::move(events)) {}

  void Publish(OutboundMessage message, PublishCallback done) override {
    const std::string& subject = message.subject.empty() ? subject_ : message.subject;
    if (!connection_.Connected()) {
      done({false, true, "nats: not connected to " + connection_.url()});
      return;
    }
    if (connection_.PublishDenied()) {
      done({false, true,
            "nats: publishing to " + subject +
                " was refused recently: " + connection_.LastAsyncError()});
      return;
    }
    std::string error;
    natsMsg* msg = connection_.NewMessage(subject, message.body, "", &error);
    if (msg == nullptr) {
      done({false, false, error});
      return;
    }
    const natsStatus s = natsConnection_PublishMsg(connection_.get(), msg);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
      done({false, s != NATS_MAX_PAYLOAD,
            "nats: publish to " + subject + " failed: " + connection_.Describe(s)});
      return;
    }
    done({true, true, ""});
  }

  bool Connected() const override { return connection_.Connected(); }

  void Flush(std::chrono::milliseconds timeout) override {
    if (connection_.Connected()) {
      natsConnection_FlushTimeout(connection_.get(), static_cast<int64_t>(timeout.count()));
    }
  }

 private:
  const std::string subject_;
  sinks::NatsConnection connection_;
};

}  // namespace

std::unique_ptr<Sink> MakeNatsCoreSink(const NatsOptions& options, SinkEvents events) {
  return std::make_unique<NatsCoreSink>(options, std::move(events));
}

}  // namespace topicbridge
