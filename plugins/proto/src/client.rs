//! The host's side of one call, shared by the dataplane's plugin host and the SDK's test
//! harness: building the `ProcessMessage` request stream (context, then body chunks) and
//! checking the reply. Connection management (health gating, breaker, reconnects) is the
//! host's business, not this module's.

use std::time::Duration;

use bytes::Bytes;
use mcp_plugin_api::StepOutput;
use tonic::transport::Channel;

use crate::convert::{Outgoing, output_from_proto};
use crate::{MAX_CHUNK, ProtocolError, v1};

/// A client of `mcp.plugin.v1.MailProcessor` over a tonic channel.
pub type Client = v1::mail_processor_client::MailProcessorClient<Channel>;

/// Why a call did not produce a checked reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin (or the transport) answered with a gRPC error status.
    #[error("plugin call failed: {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The reply broke the contract.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// A client on `channel` that accepts and sends messages of up to `max_message` octets
/// (tonic's default is 4 MiB; buffered bodies can be larger).
pub fn client(channel: Channel, max_message: usize) -> Client {
    v1::mail_processor_client::MailProcessorClient::new(channel)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message)
}

/// The request stream of one `ProcessMessage` call: the context, then (with a
/// [`Outgoing::stream_body`]) the body in chunks of at most [`MAX_CHUNK`] octets, the last one
/// flagged `last` (an empty body is one empty last chunk).
pub fn request_stream(outgoing: Outgoing) -> Vec<v1::ProcessMessageRequest> {
    use v1::process_message_request::Part;
    let mut parts = vec![v1::ProcessMessageRequest {
        part: Some(Part::Context(outgoing.context)),
    }];
    if let Some(body) = outgoing.stream_body {
        let mut start = 0;
        loop {
            let end = (start + MAX_CHUNK).min(body.len());
            let last = end == body.len();
            parts.push(v1::ProcessMessageRequest {
                part: Some(Part::Chunk(v1::BodyChunk {
                    data: body.slice(start..end),
                    last,
                })),
            });
            if last {
                break;
            }
            start = end;
        }
    }
    parts
}

/// Calls `ProcessMessage` with `outgoing` under `timeout` (sent as `grpc-timeout`, so the
/// plugin sees the deadline too) and checks the reply with [`output_from_proto`].
///
/// # Errors
/// [`CallError::Status`] for a gRPC error (including `DEADLINE_EXCEEDED` and a dropped
/// connection), [`CallError::Protocol`] for a reply that breaks the contract.
pub async fn process_message(
    client: &mut Client,
    outgoing: Outgoing,
    timeout: Duration,
) -> Result<StepOutput, CallError> {
    let mut request = tonic::Request::new(futures::stream::iter(request_stream(outgoing)));
    request.set_timeout(timeout);
    let reply = client.process_message(request).await?.into_inner();
    Ok(output_from_proto(reply)?)
}

/// Reassembles a streamed body from its chunks, checking the framing: each chunk at most
/// [`MAX_CHUNK`] octets, nothing after the `last` one, the total at most `limit` octets.
///
/// # Errors
/// [`ProtocolError`] naming the broken rule.
#[derive(Debug, Default)]
pub struct ChunkAssembler {
    body: bytes::BytesMut,
    done: bool,
    limit: usize,
}

impl ChunkAssembler {
    /// An assembler accepting up to `limit` octets.
    pub fn new(limit: usize) -> Self {
        Self {
            body: bytes::BytesMut::new(),
            done: false,
            limit,
        }
    }

    /// Adds one chunk.
    ///
    /// # Errors
    /// [`ProtocolError`] for a chunk after the last, a chunk over [`MAX_CHUNK`], or a body over
    /// the limit.
    pub fn push(&mut self, chunk: v1::BodyChunk) -> Result<(), ProtocolError> {
        if self.done {
            return Err(ProtocolError("chunk: sent after the last chunk".into()));
        }
        if chunk.data.len() > MAX_CHUNK {
            return Err(ProtocolError(format!(
                "chunk: {} octets, more than {MAX_CHUNK}",
                chunk.data.len()
            )));
        }
        if self.body.len() + chunk.data.len() > self.limit {
            return Err(ProtocolError(format!(
                "chunk: the body exceeds {} octets",
                self.limit
            )));
        }
        self.body.extend_from_slice(&chunk.data);
        self.done = chunk.last;
        Ok(())
    }

    /// Whether the last chunk arrived.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// The body.
    ///
    /// # Errors
    /// [`ProtocolError`] when the stream ended before the `last` chunk (a truncated body is
    /// never processed as if whole).
    pub fn finish(self) -> Result<Bytes, ProtocolError> {
        if !self.done {
            return Err(ProtocolError(
                "chunk: the stream ended before the last chunk".into(),
            ));
        }
        Ok(self.body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{CallInfo, context_to_proto};
    use mcp_crds::plugin::BodyMode;
    use mcp_plugin_api::{Envelope, MessageContext, Stage};
    use v1::process_message_request::Part;

    fn outgoing(body_len: usize) -> Outgoing {
        let mut message = b"Subject: x\r\n\r\n".to_vec();
        message.extend(std::iter::repeat_n(b'a', body_len));
        let ctx = MessageContext {
            stage: Stage::Append,
            tenant: "t".into(),
            mailbox: "a@example.com".into(),
            folder: "INBOX".into(),
            envelope: Envelope::default(),
            message: Bytes::from(message),
            flags: vec![],
            metadata: Default::default(),
        };
        context_to_proto(&ctx, CallInfo::default(), BodyMode::Streamed, u64::MAX)
    }

    #[test]
    fn bodies_stream_in_chunks_that_reassemble() {
        for len in [
            0,
            1,
            MAX_CHUNK - 1,
            MAX_CHUNK,
            MAX_CHUNK + 1,
            3 * MAX_CHUNK + 7,
        ] {
            let parts = request_stream(outgoing(len));
            assert!(matches!(parts[0].part, Some(Part::Context(_))));
            let mut asm = ChunkAssembler::new(usize::MAX);
            for p in &parts[1..] {
                let Some(Part::Chunk(c)) = &p.part else {
                    panic!("not a chunk")
                };
                asm.push(c.clone()).expect("valid chunk");
            }
            assert_eq!(parts.len() - 1, len.div_ceil(MAX_CHUNK).max(1), "{len}");
            assert_eq!(asm.finish().expect("complete").len(), len);
        }
    }

    #[test]
    fn hostile_chunk_streams_are_refused() {
        let chunk = |n: usize, last: bool| v1::BodyChunk {
            data: Bytes::from(vec![b'x'; n]),
            last,
        };
        let mut a = ChunkAssembler::new(usize::MAX);
        assert!(
            a.push(chunk(MAX_CHUNK + 1, false)).is_err(),
            "oversized chunk"
        );
        let mut a = ChunkAssembler::new(10);
        a.push(chunk(8, false)).expect("fits");
        assert!(a.push(chunk(3, true)).is_err(), "over the limit");
        let mut a = ChunkAssembler::new(usize::MAX);
        a.push(chunk(1, true)).expect("fits");
        assert!(a.push(chunk(1, true)).is_err(), "after the last");
        let mut a = ChunkAssembler::new(usize::MAX);
        a.push(chunk(1, false)).expect("fits");
        assert!(a.finish().is_err(), "truncated");
    }
}
