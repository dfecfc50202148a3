//! Channels: multi-producer multi-consumer queues that park the coroutine.
