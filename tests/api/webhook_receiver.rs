//! A real webhook receiver on 127.0.0.1 for the webhook tests: records every request and
//! answers from a script (status and optional `Retry-After`), 200 once the script runs out.
//! It verifies signatures the way a receiver does, with its own HMAC-SHA256.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// Whether one of the `v1,` signatures was made with this `whsec_` secret.
    pub fn signed_by(&self, secret: &str) -> bool {
        let key = data_encoding::BASE64
            .decode(secret.strip_prefix("whsec_").unwrap().as_bytes())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!(
            "v1,{}",
            data_encoding::BASE64.encode(&mac.finalize().into_bytes())
        );
        self.signature.split(' ').any(|s| s == expected)
    }

    pub fn signature_count(&self) -> usize {
        self.signature.split(' ').count()
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<(u16, Option<String>)>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    connections: Arc<AtomicUsize>,
}

async fn hook(req: HttpRequest, body: web::Bytes, inner: web::Data<Mutex<Inner>>) -> HttpResponse {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let mut g = inner.lock().unwrap();
    g.received.push(Received {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let (status, retry_after) = g.script.pop_front().unwrap_or((200, None));
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Some(ra) = retry_after {
        res.insert_header(("Retry-After", ra));
    }
    res.finish()
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let data = web::Data::from(inner.clone());
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(hook))
        })
        .on_connect(move |_, _| {
            accepted.fetch_add(1, Ordering::SeqCst);
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            inner,
            connections,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The next answers, in order.
    pub fn script(&self, answers: &[(u16, Option<&str>)]) {
        let mut g = self.inner.lock().unwrap();
        g.script = answers
            .iter()
            .map(|(s, r)| (*s, r.map(str::to_owned)))
            .collect();
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }
}
