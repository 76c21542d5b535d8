//! A fault-injecting HTTP proxy in front of moto: it throttles some
//! requests, drops the connection after forwarding others (so the change is
//! made but the client never hears of it), and can refuse everything after a
//! number of requests, to interrupt an apply halfway. It also answers the
//! access advisor's operations, which moto lacks (`advisor.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::advisor::Advisor;

pub struct FaultyProxy {
    pub port: u16,
    faults: Arc<AtomicBool>,
    /// After this many requests, every request is refused (0: never).
    refuse_after: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Requests of this IAM action are refused (`AccessDenied`).
    refused_action: Arc<Mutex<Option<String>>>,
    /// The next so many requests of an action get an error of IAM's.
    answered: Arc<Mutex<Option<Answer>>>,
    pub throttled: Arc<AtomicUsize>,
    pub dropped: Arc<AtomicUsize>,
    /// The access advisor's two operations, answered here (moto has
    /// neither).
    pub advisor: Arc<Mutex<Advisor>>,
    /// Every request forwarded, head and body, as text.
    seen: Arc<Mutex<Vec<String>>>,
}

impl FaultyProxy {
    pub fn start(upstream: u16) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let proxy = FaultyProxy {
            port,
            faults: Arc::new(AtomicBool::new(true)),
            refuse_after: Arc::new(AtomicUsize::new(0)),
            requests: Arc::new(AtomicUsize::new(0)),
            refused_action: Arc::new(Mutex::new(None)),
            answered: Arc::new(Mutex::new(None)),
            throttled: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(AtomicUsize::new(0)),
            advisor: Arc::new(Mutex::new(Advisor::default())),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let shared = proxy.handles();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(client, upstream));
            }
        });
        proxy
    }

    fn handles(&self) -> Handles {
        Handles {
            faults: self.faults.clone(),
            refuse_after: self.refuse_after.clone(),
            requests: self.requests.clone(),
            refused_action: self.refused_action.clone(),
            answered: self.answered.clone(),
            throttled: self.throttled.clone(),
            dropped: self.dropped.clone(),
            advisor: self.advisor.clone(),
            seen: self.seen.clone(),
        }
    }

    /// The requests seen of one action (`AssumeRole`), as text: the form
    /// body holds their parameters.
    pub fn requests_of(&self, action: &str) -> Vec<String> {
        let needle = format!("Action={action}&");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains(&needle))
            .cloned()
            .collect()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn refuse_after(&self, requests: usize) {
        self.refuse_after.store(requests, Ordering::SeqCst);
    }

    /// Refuses every request of one IAM action (`PutRolePolicy`), as IAM
    /// does when the caller may not; `None` lets them through again.
    pub fn refuse_action(&self, action: Option<&str>) {
        *self.refused_action.lock().unwrap() = action.map(str::to_string);
    }

    /// Answers the next `times` requests of `action` with IAM's error
    /// `code` (HTTP `status`), as IAM does while, say, a credential report
    /// is being made.
    pub fn answer(&self, action: &str, times: usize, status: &str, code: &str) {
        *self.answered.lock().unwrap() = Some(Answer {
            action: action.to_string(),
            times,
            status: status.to_string(),
            code: code.to_string(),
        });
    }

    /// From now on, forward everything faithfully.
    pub fn heal(&self) {
        self.faults.store(false, Ordering::SeqCst);
        self.refuse_after.store(0, Ordering::SeqCst);
        self.refuse_action(None);
    }
}

struct Answer {
    action: String,
    times: usize,
    status: String,
    code: String,
}

#[derive(Clone)]
struct Handles {
    faults: Arc<AtomicBool>,
    refuse_after: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    refused_action: Arc<Mutex<Option<String>>>,
    answered: Arc<Mutex<Option<Answer>>>,
    throttled: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    advisor: Arc<Mutex<Advisor>>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn error_response(status: &str, code: &str, message: &str) -> String {
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP request (head and body); `None` at the end of the stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        // One request per upstream connection.
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

impl Handles {
    fn serve(&self, client: TcpStream, upstream: u16) {
        let Ok(writer) = client.try_clone() else {
            return;
        };
        let mut writer = writer;
        let mut reader = BufReader::new(client);
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        self.seen
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&request).into_owned());
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let refuse_after = self.refuse_after.load(Ordering::SeqCst);
        if refuse_after > 0 && n > refuse_after {
            let _ = writer.write_all(
                error_response("403 Forbidden", "AccessDenied", "the proxy refuses").as_bytes(),
            );
            return;
        }
        let has = |request: &[u8], action: &str| {
            let needle = format!("Action={action}&");
            request
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        };
        {
            let mut answered = self.answered.lock().unwrap();
            if let Some(answer) = answered.as_mut() {
                if answer.times > 0 && has(&request, &answer.action) {
                    answer.times -= 1;
                    let reply = error_response(&answer.status, &answer.code, "as IAM answers");
                    drop(answered);
                    let _ = writer.write_all(reply.as_bytes());
                    return;
                }
            }
        }
        let refused = self.refused_action.lock().unwrap().clone();
        if let Some(action) = refused {
            let needle = format!("Action={action}&");
            if request
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                let _ = writer.write_all(
                    error_response(
                        "403 Forbidden",
                        "AccessDenied",
                        "the proxy refuses this action",
                    )
                    .as_bytes(),
                );
                return;
            }
        }
        let faults = self.faults.load(Ordering::SeqCst);
        if faults && n.is_multiple_of(3) {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            let _ = writer.write_all(
                error_response("400 Bad Request", "Throttling", "Rate exceeded").as_bytes(),
            );
            return;
        }
        let advised = self.advisor.lock().unwrap().answer(&request, upstream);
        if let Some(reply) = advised {
            let _ = writer.write_all(reply.as_bytes());
            return;
        }
        let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        if server.write_all(&request).is_err() {
            return;
        }
        let mut response = Vec::new();
        let _ = server.read_to_end(&mut response);
        if faults && n.is_multiple_of(5) {
            // The change was made; the client never hears of it.
            self.dropped.fetch_add(1, Ordering::SeqCst);
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
        let _ = writer.write_all(&response);
    }
}
