//! What a worker answers in reload mode while the application does not load (say a syntax error
//! was just saved): every request that no static mount takes gets a 500 with the error and its
//! traceback, so the developer sees it in the browser, fixes the code and saves, and the
//! reloader brings the application back. Without `--reload` such a worker exits instead.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use bytes::Bytes;
use tern_core::service::{AppEvent, ResponseHead, Service, ServiceCall, ServiceRequest};

/// Plain text, so the traceback needs no escaping; never cached, never sniffed as HTML.
const HEADERS: &[u8] = b"Content-Type: text/plain; charset=utf-8\r\n\
Cache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\n";

/// The [`Service`] that answers every request with the load error.
#[derive(Debug)]
pub struct LoadErrorPage {
    /// The whole response body: an explanation, then the error and its traceback.
    body: Bytes,
}

impl LoadErrorPage {
    /// `error` is the load error as the host reports it: a summary line, then the traceback.
    pub fn new(error: &str) -> Self {
        let body = format!(
            "The application could not be loaded:\n\n{}\n\n\
             (tern --reload: fix the code and save; the workers restart by themselves.)\n",
            error.trim_end()
        );
        LoadErrorPage {
            body: Bytes::from(body),
        }
    }
}

impl Service for LoadErrorPage {
    fn call(&self, _request: ServiceRequest) -> Box<dyn ServiceCall> {
        let head = ResponseHead {
            status: 500,
            reason: "Internal Server Error".into(),
            header_lines: HEADERS.to_vec(),
            content_length: Some(self.body.len() as u64),
            length_in_headers: false,
            has_server: false,
            has_date: false,
        };
        Box::new(PageCall {
            events: VecDeque::from([
                AppEvent::Head(head),
                AppEvent::Data(self.body.clone()),
                AppEvent::End,
            ]),
        })
    }
}

/// One request being answered: the events still to hand to the connection.
struct PageCall {
    /// Head, body, end; then nothing more is asked.
    events: VecDeque<AppEvent>,
}

impl ServiceCall for PageCall {
    fn poll_event(&mut self, _cx: &mut Context<'_>) -> Poll<AppEvent> {
        Poll::Ready(self.events.pop_front().unwrap_or(AppEvent::End))
    }
}
