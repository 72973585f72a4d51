//! LMTP over TCP with the real store ([`StoreDeliverer`] on SQLite and a blob directory):
//! what a 250 means (committed, visible, announced to IDLE), what the refusals are, and that
//! a cut connection or a failing store never yields a 250.

use std::sync::Arc;
use std::time::Duration;

use mcp_dataplane::ingest::Ingest;
use mcp_dataplane::lmtp::{self, LmtpContext, LmtpLimits, StoreDeliverer};
use mcp_dataplane::metrics::Metrics;
use mcp_dataplane::pipeline::{PipelineSet, Pipelines};
use mcp_dataplane::store::{AccountUpsert, BlobStore, Change, MetadataStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Server {
    addr: std::net::SocketAddr,
    store: MetadataStore,
    blobs: BlobStore,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("meta.db").display());
        let store = MetadataStore::connect(&url).await.expect("store");
        let blobs = BlobStore::open(dir.path().join("blobs"))
            .await
            .expect("blobs");
        for (address, active) in [("alice@example.com", true), ("dave@example.com", false)] {
            store
                .upsert_account(&AccountUpsert {
                    tenant: "example".into(),
                    address: address.into(),
                    password_hash: String::new(),
                    active,
                    ..AccountUpsert::default()
                })
                .await
                .expect("account");
        }
        let metrics = Arc::new(Metrics::default());
        let ctx = Arc::new(LmtpContext {
            deliverer: Arc::new(StoreDeliverer::new(
                store.clone(),
                Ingest::new(
                    store.clone(),
                    blobs.clone(),
                    Pipelines::new(PipelineSet::default()),
                    Arc::clone(metrics.pipeline()),
                ),
            )),
            hostname: "mcp.test".into(),
            limits: LmtpLimits::default(),
            metrics,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token = CancellationToken::new();
        tokio::spawn(lmtp::serve(ctx, listener, token.clone()));
        Server {
            addr,
            store,
            blobs,
            token,
            _dir: dir,
        }
    }

    async fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let account = self
            .store
            .account_by_address(address)
            .await
            .expect("lookup")
            .expect("account");
        let inbox = self
            .store
            .mailbox(account.id, "INBOX")
            .await
            .expect("mailbox")
            .expect("INBOX");
        let mut bodies = Vec::new();
        for m in self.store.messages(inbox.id).await.expect("messages") {
            bodies.push(self.blobs.get(&m.blob).await.expect("blob").to_vec());
        }
        bodies
    }
}

/// A line-oriented client.
struct Client {
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(server: &Server) -> Client {
        let (rd, wr) = TcpStream::connect(server.addr)
            .await
            .expect("connect")
            .into_split();
        let mut c = Client {
            rd: BufReader::new(rd),
            wr,
        };
        assert!(c.line().await.starts_with("220 "));
        c.send("LHLO client.test\r\n").await;
        while c.line().await.starts_with("250-") {}
        c
    }

    async fn send(&mut self, s: &str) {
        self.wr.write_all(s.as_bytes()).await.expect("write");
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.rd.read_line(&mut l).await.expect("read");
        l
    }

    /// The next `n` reply lines' `code status` prefixes.
    async fn codes(&mut self, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..n {
            let l = self.line().await;
            v.push(l.split(' ').take(2).collect::<Vec<_>>().join(" "));
        }
        v
    }
}

#[tokio::test]
async fn delivered_message_is_committed_visible_and_announced() {
    let server = Server::start().await;
    let mut changes = server.store.bus().subscribe();
    let mut c = Client::connect(&server).await;
    c.send(
        "MAIL FROM:<sender@example.net>\r\nRCPT TO:<Alice@Example.com>\r\nDATA\r\n\
         Subject: hello\r\n\r\nbody line\r\n.\r\n",
    )
    .await;
    assert_eq!(
        c.codes(4).await,
        ["250 2.1.0", "250 2.1.5", "354 Start", "250 2.0.0"]
    );
    let inbox = server.inbox("alice@example.com").await;
    assert_eq!(inbox.len(), 1);
    let text = String::from_utf8(inbox[0].clone()).expect("utf8");
    assert!(
        text.starts_with("Return-Path: <sender@example.net>\r\nReceived: from client.test"),
        "{text}"
    );
    assert!(text.contains("\tfor <Alice@Example.com>; "), "{text}");
    assert!(
        text.ends_with("\r\nSubject: hello\r\n\r\nbody line\r\n"),
        "{text}"
    );
    let announced = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .expect("announced")
        .expect("bus");
    let account = server
        .store
        .account_by_address("alice@example.com")
        .await
        .expect("lookup")
        .expect("account");
    let inbox = server
        .store
        .mailbox(account.id, "INBOX")
        .await
        .expect("mailbox")
        .expect("INBOX");
    assert_eq!(announced, Change::Mailbox(inbox.id));
    server.token.cancel();
}

#[tokio::test]
async fn unknown_and_disabled_recipients_are_refused_at_rcpt() {
    let server = Server::start().await;
    let mut c = Client::connect(&server).await;
    c.send(
        "MAIL FROM:<>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<dave@example.com>\r\n\
         RCPT TO:<alice@other.org>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(
        c.codes(5).await,
        [
            "250 2.1.0",
            "550 5.1.1",
            "550 5.2.1",
            "550 5.1.1",
            "503 5.5.1"
        ]
    );
    assert!(server.inbox("dave@example.com").await.is_empty());
}

#[tokio::test]
async fn connection_cut_mid_data_stores_nothing() {
    let server = Server::start().await;
    let mut c = Client::connect(&server).await;
    c.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
        .await;
    assert_eq!(c.codes(3).await, ["250 2.1.0", "250 2.1.5", "354 Start"]);
    c.send("Subject: cut\r\n\r\nhalf").await;
    drop(c);
    // A second session proves the server went on, and that nothing was stored meanwhile.
    let mut c = Client::connect(&server).await;
    c.send("NOOP\r\n").await;
    assert_eq!(c.codes(1).await, ["250 2.0.0"]);
    assert!(server.inbox("alice@example.com").await.is_empty());
}

#[tokio::test]
async fn store_failure_gives_451_never_250() {
    let server = Server::start().await;
    let mut c = Client::connect(&server).await;
    c.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
        .await;
    assert_eq!(c.codes(3).await, ["250 2.1.0", "250 2.1.5", "354 Start"]);
    server.store.close().await;
    c.send("Subject: x\r\n\r\ny\r\n.\r\n").await;
    assert_eq!(c.codes(1).await, ["451 4.3.0"]);
}
