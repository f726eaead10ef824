#include "nats_connection.h"

#include <algorithm>
#include <utility>

#include "nkey.h"
#include "parameter_schema.h"

namespace topicbridge::sinks {

namespace {

constexpr auto kDeniedWindow = std::chrono::seconds(5);
// A connect failure that repeats is reported again only after this long.
constexpr auto kRepeatReport = std::chrono::seconds(60);
// Waits between first-connection attempts double up to this.
constexpr int kMaxRetryWaitMs = 5000;

// Options are only needed until the connection is created.
struct OptionsHandle {
  natsOptions* options = nullptr;
  ~OptionsHandle() { natsOptions_Destroy(options); }
};

std::string StatusText(natsStatus status) {
  std::string text = natsStatus_GetText(status);
  const char* last_error = nats_GetLastError(nullptr);
  std::string detail = last_error != nullptr ? last_error : "";
  // cnats prefixes where it set the error, "(conn.c:1905): ": not for operators.
  if (const std::size_t end = detail.find("): "); detail.rfind('(', 0) == 0 &&
                                                  end != std::string::npos &&
                                                  detail.find(".c:") < end) {
    detail.erase(0, end + 3);
  }
  if (!detail.empty() && text != detail) text += ": " + detail;
  return text;
}

// The host TLS must verify: that of a single URL naming a DNS host. cnats checks
// the name only when told; several URLs may name several hosts, and OpenSSL's
// host check does not match IP addresses (for those the chain is verified).
std::string TlsHostname(const std::string& urls) {
  if (urls.find(',') != std::string::npos) return "";
  std::string host = RedactUrl(urls);
  if (const std::size_t scheme = host.find("://"); scheme != std::string::npos) {
    host.erase(0, scheme + 3);
  }
  host = host.substr(0, host.find_first_of(":/"));
  if (host.empty() || host.find_first_not_of("0123456789.") == std::string::npos) return "";
  return host;
}

}  // namespace

NatsConnection::NatsConnection(const NatsOptions& options, SinkEvents events,
                               EstablishedHook established)
    : events_(std::move(events)),
      established_(std::move(established)),
      secrets_(UrlSecrets(options.url)),
      redacted_url_(RedactUrl(options.url)),
      retry_wait_ms_(std::max(100, options.reconnect_wait_ms)) {
  secrets_.push_back(options.password);
  OptionsHandle handle;
  auto check = [this](natsStatus s, const char* what) {
    if (s != NATS_OK) {
      throw SinkConfigError(
          {{"", std::string("nats ") + what + ": " + Scrub(StatusText(s), secrets_)}});
    }
  };
  check(natsOptions_Create(&handle.options), "options");
  natsOptions* o = handle.options;
  check(natsOptions_SetURL(o, options.url.c_str()), "url");
  if (!options.connection_name.empty())
    check(natsOptions_SetName(o, options.connection_name.c_str()), "connectionName");
  if (!options.username.empty() || !options.password.empty()) {
    check(natsOptions_SetUserInfo(o, options.username.c_str(), options.password.c_str()),
          "username/password");
  }
  if (!options.credentials_file_path.empty()) {
    check(
        natsOptions_SetUserCredentialsFromFiles(o, options.credentials_file_path.c_str(), nullptr),
        "credentialsFilePath");
  }
  if (!options.nkey_seed_file_path.empty()) {
    std::string error;
    const std::string public_key = NKeyPublicKeyFromSeedFile(options.nkey_seed_file_path, &error);
    if (public_key.empty()) throw SinkConfigError({{"", "nats nkeySeedFilePath: " + error}});
    check(natsOptions_SetNKeyFromSeed(o, public_key.c_str(), options.nkey_seed_file_path.c_str()),
          "nkeySeedFilePath");
  }
  if (options.tls) {
    check(natsOptions_SetSecure(o, true), "sslContext");
    if (const std::string host = TlsHostname(options.url); !host.empty())
      check(natsOptions_SetExpectedHostname(o, host.c_str()), "url");
    if (!options.tls_ca_file.empty())
      check(natsOptions_LoadCATrustedCertificates(o, options.tls_ca_file.c_str()), "tlsCaFile");
    if (!options.tls_cert_file.empty()) {
      check(natsOptions_LoadCertificatesChain(o, options.tls_cert_file.c_str(),
                                              options.tls_key_file.c_str()),
            "tlsCertFile/tlsKeyFile");
    }
  }
  // No retry-on-failed-connect: cnats would retry a refused login inside
  // natsConnection_Connect without saying why (and, without TLS, never return).
  // Until the first connection KeepConnecting retries; after it, cnats does.
  check(natsOptions_SetMaxReconnect(o, -1), "reconnect");
  check(natsOptions_SetReconnectWait(o, options.reconnect_wait_ms), "reconnect wait");
  check(natsOptions_SetDisconnectedCB(o, &NatsConnection::OnDisconnected, this), "callbacks");
  check(natsOptions_SetReconnectedCB(o, &NatsConnection::OnConnected, this), "callbacks");
  check(natsOptions_SetClosedCB(o, &NatsConnection::OnClosed, this), "callbacks");
  check(natsOptions_SetErrorHandler(o, &NatsConnection::OnAsyncError, this), "callbacks");
  options_ = std::exchange(handle.options, nullptr);
  if (!TryConnect()) connector_ = std::thread(&NatsConnection::KeepConnecting, this);
}

void NatsConnection::StopConnecting() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (connector_.joinable()) connector_.join();  // an attempt in progress ends within its timeout
}

NatsConnection::~NatsConnection() {
  StopConnecting();
  if (natsConnection* nc = connection_.load(); nc != nullptr) {
    natsConnection_Close(nc);
    {
      // The closed callback is the last one cnats makes with `this`.
      std::unique_lock<std::mutex> lock(mutex_);
      closed_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
    }
    natsConnection_Destroy(nc);
  }
  natsOptions_Destroy(options_);
}

bool NatsConnection::TryConnect() {
  natsConnection* nc = nullptr;
  const natsStatus s = natsConnection_Connect(&nc, options_);
  if (s == NATS_OK) {
    if (established_) established_(nc);
    connection_.store(nc, std::memory_order_release);
    Notify(true);
    return true;
  }
  // Describe() reads cnats' error detail of this thread: call it before anything else.
  std::string text = "nats: cannot connect to " + redacted_url_ + ": " + Describe(s);
  if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ||
      text.find("Authorization Violation") != std::string::npos ||
      text.find("Authentication") != std::string::npos) {
    text += " (check username/password, credentialsFilePath or nkeySeedFilePath)";
  } else if (s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_REQUIRED ||
             s == NATS_SECURE_CONNECTION_WANTED) {
    text += " (check sslContext and tlsCaFile/tlsCertFile/tlsKeyFile against the server's TLS)";
  } else if (s == NATS_NO_SERVER) {
    text += " (is nats-server running and reachable from here?)";
  }
  text += "; retrying";
  bool report = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (text != last_connect_error_ || now - last_connect_report_ >= kRepeatReport) {
      last_connect_error_ = text;
      last_connect_report_ = now;
      report = true;
    }
  }
  if (report && events_.on_error) events_.on_error(text);
  return false;
}

void NatsConnection::KeepConnecting() {
  int wait_ms = retry_wait_ms_;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    const bool connected = TryConnect();
    lock.lock();
    if (connected) return;
    wait_ms = std::min(wait_ms * 2, std::max(retry_wait_ms_, kMaxRetryWaitMs));
  }
}

bool NatsConnection::Connected() const {
  natsConnection* nc = get();
  return nc != nullptr && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

bool NatsConnection::PublishDenied() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::chrono::steady_clock::now() < denied_until_;
}

std::string NatsConnection::LastAsyncError() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_async_error_;
}

natsMsg* NatsConnection::NewMessage(const std::string& subject, const std::string& body,
                                    const std::string& msg_id, std::string* error) const {
  natsMsg* msg = nullptr;
  natsStatus s =
      natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, "content-type", "application/json");
  if (s == NATS_OK && !msg_id.empty()) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    *error = "nats: cannot build message for subject " + subject + ": " + Describe(s);
    return nullptr;
  }
  return msg;
}

std::string NatsConnection::Describe(natsStatus status) const {
  return Scrub(StatusText(status), secrets_);
}

void NatsConnection::Notify(bool connected) {
  if (events_.on_connection) events_.on_connection(connected);
}

void NatsConnection::OnConnected(natsConnection*, void* closure) {
  static_cast<NatsConnection*>(closure)->Notify(true);
}

void NatsConnection::OnDisconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsConnection*>(closure);
  self->Notify(false);
}

void NatsConnection::OnClosed(natsConnection*, void* closure) {
  auto* self = static_cast<NatsConnection*>(closure);
  std::lock_guard<std::mutex> lock(self->mutex_);
  self->closed_ = true;
  self->closed_cv_.notify_all();
}

void NatsConnection::OnAsyncError(natsConnection* nc, natsSubscription*, natsStatus err,
                                  void* closure) {
  auto* self = static_cast<NatsConnection*>(closure);
  const char* detail = nullptr;
  natsConnection_GetLastError(nc, &detail);
  std::string text = "nats " + self->redacted_url_ + ": " + natsStatus_GetText(err);
  if (detail != nullptr && *detail != '\0') text += ": " + std::string(detail);
  text = Scrub(std::move(text), self->secrets_);
  const bool denied = err == NATS_NOT_PERMITTED ||
                      text.find("Permissions Violation") != std::string::npos ||
                      text.find("permissions violation") != std::string::npos;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->last_async_error_ = text;
    if (denied) self->denied_until_ = std::chrono::steady_clock::now() + kDeniedWindow;
  }
  if (self->events_.on_error) self->events_.on_error(text);
}

}  // namespace topicbridge::sinks
