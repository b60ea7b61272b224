//! Abuse limits: how often one client may register, sign in or refresh, and how often one
//! account may be tried. GCRA rate limiters from `governor`, keyed by client IP or identifier.
use domain::LoginIdentifier;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::Request;
use poem::web::RemoteAddr;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Requests per minute; 0 turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub register_per_ip: u32,
    pub login_per_ip: u32,
    pub login_per_identifier: u32,
    pub refresh_per_ip: u32,
    /// Take the client IP from the first `X-Forwarded-For` entry. Only behind a proxy that
    /// sets it: otherwise any client can claim any IP and escape its limit.
    pub trust_forwarded_for: bool,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            register_per_ip: 10,
            login_per_ip: 30,
            login_per_identifier: 5,
            refresh_per_ip: 60,
            trust_forwarded_for: false,
        }
    }
}

impl RateLimitSettings {
    #[must_use]
    pub fn off() -> Self {
        Self {
            register_per_ip: 0,
            login_per_ip: 0,
            login_per_identifier: 0,
            refresh_per_ip: 0,
            trust_forwarded_for: false,
        }
    }
}

type Limiter = Option<DefaultKeyedRateLimiter<String>>;

fn limiter(per_minute: u32) -> Limiter {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

pub struct RateLimits {
    register: Limiter,
    login: Limiter,
    login_identifier: Limiter,
    refresh: Limiter,
    trust_forwarded_for: bool,
    clock: DefaultClock,
}

/// Over the limit: retry after this long.
pub struct Limited(pub Duration);

impl Limited {
    /// Whole seconds for `Retry-After`, never 0.
    pub fn retry_after_secs(&self) -> u64 {
        let rounded_up = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        rounded_up.max(1)
    }
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            register: limiter(settings.register_per_ip),
            login: limiter(settings.login_per_ip),
            login_identifier: limiter(settings.login_per_identifier),
            refresh: limiter(settings.refresh_per_ip),
            trust_forwarded_for: settings.trust_forwarded_for,
            clock: DefaultClock::default(),
        }
    }

    /// The key a client's budget is kept under.
    pub fn client_of(&self, request: &Request) -> String {
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok());
        client_ip(request.remote_addr(), forwarded, self.trust_forwarded_for)
    }

    pub fn register(&self, client: &str) -> Result<(), Limited> {
        self.check(&self.register, client)
    }

    /// Both the client's and the account's budget: a botnet spread over many IPs still gets
    /// only a few guesses at one account.
    pub fn login(&self, client: &str, identifier: &str) -> Result<(), Limited> {
        self.check(&self.login, client)?;
        self.check(&self.login_identifier, &account_key(identifier))
    }

    pub fn refresh(&self, client: &str) -> Result<(), Limited> {
        self.check(&self.refresh, client)
    }

    /// Forgets clients that have been quiet for a full window, so memory stays bounded.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.register,
            &self.login,
            &self.login_identifier,
            &self.refresh,
        ]
        .into_iter()
        .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn check(&self, limiter: &Limiter, key: &str) -> Result<(), Limited> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| Limited(not_until.wait_time_from(self.clock.now())))
    }
}

/// The key an account's budget is kept under: the identifier normalised exactly as sign-in
/// normalises it, so that no other spelling (case, padding, full-width letters) gets a fresh
/// budget for the same account.
fn account_key(identifier: &str) -> String {
    match LoginIdentifier::parse(identifier) {
        LoginIdentifier::Email(email) => format!("email:{email}"),
        LoginIdentifier::Username(name) => format!("username:{name}"),
        // Names no account; bounded so that junk cannot grow the limiter's memory.
        LoginIdentifier::Unmatchable => format!(
            "other:{}",
            identifier.trim().chars().take(64).collect::<String>()
        ),
    }
}

/// The client's IP: the peer's, or behind a trusted proxy the last `X-Forwarded-For` entry,
/// the one that proxy appended (entries before it are whatever the client sent).
fn client_ip(
    remote: &RemoteAddr,
    forwarded_for: Option<&str>,
    trust_forwarded_for: bool,
) -> String {
    if trust_forwarded_for {
        let last = forwarded_for
            .and_then(|value| value.rsplit(',').next())
            .map(str::trim);
        if let Some(ip) = last.and_then(|ip| ip.parse::<IpAddr>().ok()) {
            return ip.to_string();
        }
    }
    remote
        .as_socket_addr()
        .map_or_else(|| remote.to_string(), |socket| socket.ip().to_string())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn remote(ip: &str) -> RemoteAddr {
        let address: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        RemoteAddr(address.into())
    }

    #[test]
    fn the_request_after_the_budget_is_refused_with_a_wait() {
        let limits = RateLimits::new(RateLimitSettings {
            register_per_ip: 2,
            ..RateLimitSettings::off()
        });
        assert!(limits.register("10.0.0.1").is_ok());
        assert!(limits.register("10.0.0.1").is_ok());
        let refused = limits
            .register("10.0.0.1")
            .expect_err("the third is over the budget");
        assert!(
            (1..=30).contains(&refused.retry_after_secs()),
            "{}",
            refused.retry_after_secs()
        );
        assert!(
            limits.register("10.0.0.2").is_ok(),
            "another client has its own budget"
        );
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted_and_only_its_last_entry() {
        let peer = remote("10.0.0.1");
        assert_eq!(
            client_ip(&peer, Some("1.1.1.1"), false),
            "10.0.0.1",
            "a forged header does not escape"
        );
        assert_eq!(
            client_ip(&peer, Some("6.6.6.6, 1.1.1.1"), true),
            "1.1.1.1",
            "the proxy appended the last one"
        );
        assert_eq!(
            client_ip(&peer, Some("1.1.1.1, not-an-ip"), true),
            "10.0.0.1"
        );
        assert_eq!(
            client_ip(&peer, Some(&"9".repeat(60_000)), true),
            "10.0.0.1",
            "junk is not a key"
        );
        assert_eq!(client_ip(&peer, None, true), "10.0.0.1");
    }

    #[test]
    fn one_account_has_a_budget_across_all_clients_and_spellings() {
        let limits = RateLimits::new(RateLimitSettings {
            login_per_identifier: 2,
            ..RateLimitSettings::off()
        });
        assert!(limits.login("10.0.0.1", "Alice").is_ok());
        assert!(limits.login("10.0.0.2", " ａｌｉｃｅ ").is_ok());
        assert!(
            limits.login("10.0.0.3", "ALICE").is_err(),
            "full-width and upper case are the same account"
        );
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = RateLimits::new(RateLimitSettings::off());
        assert!((0..1000).all(|_| limits.register("10.0.0.1").is_ok()));
    }
}
