//! A TCP proxy in front of the broker or the database that a test can cut and restore, to play
//! an outage.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    address: SocketAddr,
    upstream: String,
    open: Arc<AtomicBool>,
    /// Bumped on every cut; each relayed connection ends when it changes.
    cuts: watch::Sender<u64>,
    /// Bumped on every freeze; each relayed connection then stops relaying but stays open.
    freezes: watch::Sender<u64>,
    /// The task accepting connections; gone while the port is closed.
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl TcpProxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("the proxy has an address");
        let (cuts, _) = watch::channel(0);
        let (freezes, _) = watch::channel(0);
        let proxy = Self {
            address,
            upstream,
            open: Arc::new(AtomicBool::new(true)),
            cuts,
            freezes,
            acceptor: Mutex::new(None),
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&self, listener: TcpListener) {
        let (open, upstream) = (self.open.clone(), self.upstream.clone());
        let (cuts, freezes) = (self.cuts.clone(), self.freezes.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    drop(client); // accepted, then closed: the service is "down"
                    continue;
                }
                tokio::spawn(relay(
                    client,
                    upstream.clone(),
                    cuts.subscribe(),
                    freezes.subscribe(),
                ));
            }
        });
        *self.acceptor.lock().expect("not poisoned") = Some(acceptor);
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Closes every relayed connection and closes new ones at once.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// The connections open now go silent, neither relaying nor closing, as over a network
    /// path that drops every packet; new ones work.
    pub fn freeze(&self) {
        self.freezes.send_modify(|freezes| *freezes += 1);
    }

    /// As [`TcpProxy::cut`], and new connections are refused, as by a host whose server is
    /// restarting.
    pub fn cut_and_refuse(&self) {
        self.cut();
        if let Some(acceptor) = self.acceptor.lock().expect("not poisoned").take() {
            acceptor.abort(); // drops the listening socket
        }
    }

    pub async fn restore(&self) {
        let closed = self.acceptor.lock().expect("not poisoned").is_none();
        if closed {
            let listener = TcpListener::bind(self.address)
                .await
                .expect("the proxy's port is free again");
            self.accept(listener);
        }
        self.open.store(true, Ordering::SeqCst);
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: String,
    mut cut: watch::Receiver<u64>,
    mut freeze: watch::Receiver<u64>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = cut.changed() => return,
        _ = freeze.changed() => {}
    }
    // Frozen: both sockets stay open, silent, until the next cut.
    let _ = cut.changed().await;
}
