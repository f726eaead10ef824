// JetStream sink (`nats-jetstream-at-least-once`): publishes asynchronously
// and completes a message only when a stream acknowledged it (PubAck). Sets
// `Nats-Msg-Id` from OutboundMessage::msg_id so the stream drops replays within
// its duplicate window. At most `max_pending` messages await their ack (MakeSink
// raises it to the destination's at-least-once window).
#pragma once

#include <cstdint>
#include <memory>

#include "topicbridge/nats_sink.h"

namespace topicbridge {

struct JetStreamLimits {
  std::int64_t max_pending = 4096;   // PublishAsync.MaxPending
  std::int64_t stall_wait_ms = 200;  // Publish blocks at most this long when max_pending is reached
  std::int64_t ack_wait_ms = 10000;  // no PubAck within this: done(ok=false), retriable
};

// done(ok=true) only on a positive PubAck (also for a duplicate the stream
// recognised). No stream captures the subject: ok=false with a message saying
// how to create one. Timeouts and disconnections: ok=false, retriable.
std::unique_ptr<Sink> MakeJetStreamSink(const NatsOptions& options, SinkEvents events,
                                        JetStreamLimits limits = {});

}  // namespace topicbridge
