//! One request/response exchange as the proxy sees it: reading a whole request from the
//! client, and relaying the app's response back. Built on the pure `http` module.

use crate::buffers::MEMORY_WINDOW_BYTES;
use crate::http::{
    canonical_reason, error_response, write_request_head, write_response_head, write_wsgi_frame,
    BodyReader, BodyRelay, ClientSide, HttpError, Limits, Peer, RequestHead, RequestParser,
    ResponseParser, Version,
};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// How a request goes to the app's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// An HTTP/1.1 head (`write_request_head`): what an app of `--app-start-command` gets.
    Http,
    /// ferry's own WSGI loader: the `environ` variables in a frame (`write_wsgi_frame`;
    /// the loader tells it from HTTP by its first byte), so its Python parses no HTTP.
    WsgiFrame,
}

/// A complete request, ready for the app.
pub struct ParsedRequest {
    /// The head (or frame) and de-chunked body exactly as they go to the app (the head
    /// alone when the body went to disk).
    pub forward: Vec<u8>,
    /// A body too large to keep in memory, to send after `forward`.
    pub spilled_body: Option<SpilledBody>,
    /// The client allows another request on its connection.
    pub keep_alive: bool,
    pub method: Vec<u8>,
    pub version: Version,
    /// What a static file answer needs, for a GET or HEAD.
    pub static_request: Option<crate::static_files::StaticRequest>,
    /// What the access log keeps of the head.
    pub summary: Box<crate::access_log::RequestSummary>,
}

/// A request body in an anonymous temporary file of the instance directory.
#[derive(Clone)]
pub struct SpilledBody {
    pub file: Arc<File>,
    pub len_bytes: u64,
}

pub enum ReadOutcome {
    NeedMore,
    Ready(ParsedRequest),
    Error(HttpError),
}

/// Reads one request at a time from a client connection's bytes.
pub struct RequestReader {
    parser: RequestParser,
    limits: Limits,
    /// Who sent the request: what the forwarding fields to the app say.
    peer: Peer,
    format: RequestFormat,
    /// Once the head is in: its bytes, the parsed head, the body so far and its framing.
    body: Option<BodyState>,
    started: bool,
    spill_dir: Arc<Path>,
}

struct BodyState {
    head_bytes: Vec<u8>,
    head: RequestHead,
    reader: BodyReader,
    payload: Vec<u8>,
    /// Once the body outgrew memory: the file holding it so far.
    spilled: Option<SpilledBody>,
    continue_sent: bool,
}

/// Bytes of a request body read from the socket at a time (they are decoded and moved to
/// the body buffer as they come).
const BODY_READ_BYTES: usize = 256 * 1024;

impl RequestReader {
    pub fn new(
        limits: Limits,
        peer: Peer,
        format: RequestFormat,
        spill_dir: Arc<Path>,
    ) -> RequestReader {
        RequestReader {
            parser: RequestParser::new(limits),
            limits,
            peer,
            format,
            body: None,
            started: false,
            spill_dir,
        }
    }

    pub fn reset(&mut self) {
        self.parser.reset();
        self.body = None;
        self.started = false;
    }

    /// Some bytes of the current request have arrived.
    pub fn started(&self) -> bool {
        self.started
    }

    pub fn in_body(&self) -> bool {
        self.body.is_some()
    }

    /// How many bytes the connection's input buffer may hold for the current step.
    pub fn buffer_limit(&self) -> usize {
        match self.body {
            Some(_) => BODY_READ_BYTES,
            None => {
                let l = &self.limits;
                l.max_request_line_bytes + l.max_field_section_bytes + 4
            }
        }
    }

    /// Consumes request bytes from the front of `input`. `interim` receives a
    /// `100 Continue` when a client waits for one before sending its body.
    pub fn feed(&mut self, input: &mut Vec<u8>, interim: &mut Vec<u8>) -> ReadOutcome {
        if self.body.is_none() {
            if input.is_empty() {
                return ReadOutcome::NeedMore;
            }
            self.started = true;
            let head = match self.parser.parse(input) {
                Err(error) => return ReadOutcome::Error(error),
                Ok(None) => return ReadOutcome::NeedMore,
                Ok(Some(head)) => head.clone(),
            };
            let head_bytes = input[..head.head_len].to_vec();
            input.drain(..head.head_len);
            let reader = BodyReader::for_request(head.framing, &self.limits);
            self.body = Some(BodyState {
                head_bytes,
                head,
                reader,
                payload: Vec::new(),
                spilled: None,
                continue_sent: false,
            });
        }
        let state = self.body.as_mut().expect("the head is in");
        let progress = match state.reader.feed_into(input, &mut state.payload) {
            Ok(progress) => progress,
            Err(error) => return ReadOutcome::Error(error),
        };
        input.drain(..progress.consumed);
        if state.spilled.is_some() || state.payload.len() > MEMORY_WINDOW_BYTES {
            if let Err(e) = spill(state, &self.spill_dir) {
                eprintln!("ferry: cannot buffer a request body on disk: {e}");
                return ReadOutcome::Error(HttpError::new(
                    503,
                    "the request body could not be buffered",
                ));
            }
        }
        if !progress.done {
            if state.head.expect_continue && !state.continue_sent && input.is_empty() {
                state.continue_sent = true;
                interim.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            return ReadOutcome::NeedMore;
        }
        let state = self.body.take().expect("the head is in");
        let body_len = state
            .spilled
            .as_ref()
            .map_or(state.payload.len() as u64, |s| s.len_bytes);
        let mut forward = Vec::with_capacity(state.head_bytes.len() + 128 + state.payload.len());
        let write_head = match self.format {
            RequestFormat::Http => write_request_head,
            RequestFormat::WsgiFrame => write_wsgi_frame,
        };
        write_head(
            &state.head,
            &state.head_bytes,
            self.peer,
            body_len,
            &mut forward,
        );
        forward.extend_from_slice(&state.payload);
        ReadOutcome::Ready(ParsedRequest {
            summary: Box::new(crate::access_log::RequestSummary::from_head(
                &state.head,
                &state.head_bytes,
            )),
            forward,
            spilled_body: state.spilled,
            keep_alive: state.head.keep_alive,
            method: state.head.method(&state.head_bytes).to_vec(),
            version: state.head.version,
            static_request: crate::static_files::StaticRequest::from_head(
                &state.head,
                &state.head_bytes,
            ),
        })
    }
}

/// Moves the body received so far into the state's spill file.
fn spill(state: &mut BodyState, dir: &Path) -> std::io::Result<()> {
    if state.spilled.is_none() {
        state.spilled = Some(SpilledBody {
            file: Arc::new(tempfile::tempfile_in(dir)?),
            len_bytes: 0,
        });
    }
    let spilled = state.spilled.as_mut().expect("just set");
    spilled
        .file
        .write_all_at(&state.payload, spilled.len_bytes)?;
    spilled.len_bytes += state.payload.len() as u64;
    state.payload.clear();
    Ok(())
}

pub enum RelayOutcome {
    NeedMore,
    /// The app switched protocols (101): from now on bytes flow both ways untouched.
    Upgraded,
    /// The response is complete; `reusable` says whether the app connection can serve another.
    Done {
        reusable: bool,
    },
    Error(HttpError),
}

/// Relays one response from the app to the client.
pub struct ResponseRelay {
    parser: ResponseParser,
    limits: Limits,
    client: ClientSide,
    method: Vec<u8>,
    body: Option<(BodyReader, BodyRelay)>,
    head_sent: bool,
    close_client: bool,
    app_keep_alive: bool,
    /// The response's status, once its head is in.
    status: Option<u16>,
    /// Bytes of the body relayed to the client so far (its framing included).
    body_bytes: u64,
}

impl ResponseRelay {
    pub fn new(request: &ParsedRequest, limits: Limits) -> ResponseRelay {
        ResponseRelay {
            parser: ResponseParser::new(limits, &request.method),
            limits,
            client: ClientSide {
                version: request.version,
                keep_alive: request.keep_alive,
            },
            method: request.method.clone(),
            body: None,
            head_sent: false,
            close_client: !request.keep_alive,
            app_keep_alive: false,
            status: None,
            body_bytes: 0,
        }
    }

    /// The status and body bytes relayed so far, for the access log.
    pub fn relayed(&self) -> Option<(u16, u64)> {
        self.status.map(|status| (status, self.body_bytes))
    }

    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// The client connection closes after this response (ferry is stopping): its head, if
    /// not sent yet, says `Connection: close`.
    pub fn close_after(&mut self) {
        self.client.keep_alive = false;
        self.close_client = true;
    }

    /// Whether the client connection stays open after this response.
    pub fn client_keep_alive(&self) -> bool {
        !self.close_client
    }

    /// Moves response bytes from `input` (the app's) to `out` (the client's).
    pub fn feed(&mut self, input: &mut Vec<u8>, out: &mut Vec<u8>) -> RelayOutcome {
        while self.body.is_none() {
            let head = match self.parser.parse(input) {
                Err(error) => return RelayOutcome::Error(error),
                Ok(None) => return RelayOutcome::NeedMore,
                Ok(Some(head)) => head.clone(),
            };
            if head.is_interim() {
                // The request body went out whole already; interim answers are of no use.
                input.drain(..head.head_len);
                self.parser.reset(&self.method);
                continue;
            }
            let plan = write_response_head(&head, input, self.client, out);
            input.drain(..head.head_len);
            self.status = Some(head.status);
            if plan.relay == BodyRelay::Tunnel {
                self.head_sent = true;
                out.append(input);
                return RelayOutcome::Upgraded;
            }
            self.head_sent = true;
            self.close_client = plan.close_client;
            self.app_keep_alive = head.keep_alive && plan.relay != BodyRelay::UntilClose;
            self.body = Some((
                BodyReader::for_response(head.framing, &self.limits),
                plan.relay,
            ));
        }
        let (reader, relay) = self.body.as_mut().expect("the head is in");
        let out_before = out.len();
        let progress = match relay {
            BodyRelay::Dechunk => reader.feed_into(input, out),
            _ => reader
                .feed(input, |_| {})
                .inspect(|p| out.extend_from_slice(&input[..p.consumed])),
        };
        self.body_bytes += (out.len() - out_before) as u64;
        match progress {
            Ok(progress) => {
                input.drain(..progress.consumed);
                if progress.done || reader.is_done() {
                    RelayOutcome::Done {
                        reusable: self.app_keep_alive,
                    }
                } else {
                    RelayOutcome::NeedMore
                }
            }
            Err(error) => RelayOutcome::Error(error),
        }
    }

    /// The app closed its connection.
    pub fn eof(&mut self) -> RelayOutcome {
        match &mut self.body {
            None => RelayOutcome::Error(HttpError::new(
                502,
                "the app closed the connection without a response",
            )),
            Some((reader, _)) => match reader.finish_at_eof() {
                Ok(()) => RelayOutcome::Done { reusable: false },
                Err(error) => RelayOutcome::Error(error),
            },
        }
    }
}

/// How ferry's own answer to a request is framed.
#[derive(Clone, Copy)]
pub struct Answer {
    /// Close the connection after it.
    pub close: bool,
    /// The request was HEAD: the page's head only.
    pub head_only: bool,
}

impl Answer {
    /// For a request whose head was not (fully) understood: close, full page.
    pub const CLOSING: Answer = Answer {
        close: true,
        head_only: false,
    };

    pub fn to(request: Option<&ParsedRequest>, keep_alive_allowed: bool) -> Answer {
        match request {
            Some(r) => Answer {
                close: !(r.keep_alive && keep_alive_allowed),
                head_only: r.method == b"HEAD",
            },
            None => Answer::CLOSING,
        }
    }
}

/// ferry's own error page for `status`; returns its status and body bytes for the access
/// log.
pub fn write_error(out: &mut Vec<u8>, status: u16, detail: &str, answer: Answer) -> (u16, u64) {
    (status, write_page(out, status, detail, None, answer))
}

/// Seconds a client is told to wait before retrying a 503.
const RETRY_AFTER_SECS: u32 = 5;

pub fn write_unavailable(out: &mut Vec<u8>, detail: &str, answer: Answer) -> (u16, u64) {
    (
        503,
        write_page(out, 503, detail, Some(RETRY_AFTER_SECS), answer),
    )
}

fn write_page(
    out: &mut Vec<u8>,
    status: u16,
    detail: &str,
    retry_after_secs: Option<u32>,
    answer: Answer,
) -> u64 {
    let start = out.len();
    let head_len = error_response(
        status,
        canonical_reason(status),
        detail,
        retry_after_secs,
        answer.close,
        out,
    );
    if answer.head_only {
        out.truncate(start + head_len);
    }
    (out.len() - start - head_len) as u64
}
