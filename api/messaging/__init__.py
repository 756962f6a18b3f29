"""NATS JetStream: the stream of events, its consumers, and the per-process live hub for subscriptions."""
