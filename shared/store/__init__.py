"""The event store, its relay to Kafka, and the consumer that follows another service's log."""
