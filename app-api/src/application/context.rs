use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Who is calling: a person signed in, or another service.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    subject: String,
    kind: PrincipalKind,
    roles: BTreeSet<String>,
    permissions: BTreeSet<String>,
}

/// Whether a principal is a person or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person, signed in.
    User,
    /// Another service, calling with its own credentials.
    Service,
}

impl PrincipalKind {
    /// `user` or `service`, as the audit trail and idempotency keys name it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
        }
    }
}

impl Principal {
    /// A principal identified by `subject` (a user id or a service name).
    pub fn new(subject: impl Into<String>, kind: PrincipalKind) -> Self {
        Self {
            subject: subject.into(),
            kind,
            roles: BTreeSet::new(),
            permissions: BTreeSet::new(),
        }
    }

    /// The same principal with `role`.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.insert(role.into());
        self
    }

    /// The same principal granted `permission`.
    #[must_use]
    pub fn with_permission(mut self, permission: impl Into<String>) -> Self {
        self.permissions.insert(permission.into());
        self
    }

    /// The user id or service name.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A person or a service.
    #[must_use]
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The principal's roles, in name order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(String::as_str)
    }

    /// The principal's permissions, in name order.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        self.permissions.iter().map(String::as_str)
    }

    /// Whether the principal has `role`.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Whether the principal was granted `permission`.
    #[must_use]
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }
}

// Only the subject and kind: role and permission lists are noise in a log line.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A W3C Trace Context (`traceparent`): which distributed trace this request
/// belongs to, so logs of every service it crosses can be joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
    parent_id: String,
    sampled: bool,
}

impl TraceContext {
    /// Parses a `traceparent` header value (`00-<32 hex>-<16 hex>-<2 hex>`);
    /// `None` for anything malformed, an all-zero id, or version `ff`.
    #[must_use]
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| {
            text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && parent_id.bytes().any(|b| b != b'0');
        let flags = u8::from_str_radix(flags, 16).ok()?;
        valid.then(|| Self {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }

    /// A new trace, started here.
    #[must_use]
    pub fn start() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Self {
            parent_id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            trace_id: id,
            sampled: true,
        }
    }

    /// The same trace continued by a new span of this service, to send onwards.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id.clone(),
            parent_id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            sampled: self.sampled,
        }
    }

    /// The 32-hex-digit trace id.
    #[must_use]
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The 16-hex-digit id of the span this context descends from: the caller's,
    /// for a trace continued from a `traceparent`.
    #[must_use]
    pub fn parent_id(&self) -> &str {
        &self.parent_id
    }

    /// Whether the trace is to be recorded (the `sampled` flag).
    #[must_use]
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The `traceparent` header value.
    #[must_use]
    pub fn header_value(&self) -> String {
        // Built piece by piece: every unit of work asks for it, and the
        // formatting machinery costs ten times as much for four pieces.
        let mut value = String::with_capacity(8 + self.trace_id.len() + self.parent_id.len());
        value.push_str("00-");
        value.push_str(&self.trace_id);
        value.push('-');
        value.push_str(&self.parent_id);
        value.push_str(if self.sampled { "-01" } else { "-00" });
        value
    }
}

/// What a use case knows about the request it serves: its id, its trace, who
/// asked, the idempotency key it carries and when it must be done by.
///
/// Cheap to clone; shared by a use case and every use case it calls.
#[derive(Debug, Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    request_id: String,
    trace: TraceContext,
    principal: Option<Principal>,
    idempotency_key: Option<String>,
    deadline: Option<Instant>,
    client_addr: Option<IpAddr>,
}

impl RequestContext {
    /// A context for the request with id `request_id`, in `trace`.
    pub fn new(request_id: impl Into<String>, trace: TraceContext) -> Self {
        Self {
            inner: Arc::new(Inner {
                request_id: request_id.into(),
                trace,
                principal: None,
                idempotency_key: None,
                deadline: None,
                client_addr: None,
            }),
        }
    }

    /// A context for work that no request started (a job, a test), with fresh ids.
    #[must_use]
    pub fn background() -> Self {
        Self::new(uuid::Uuid::now_v7().to_string(), TraceContext::start())
    }

    fn edit(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// The same context acting for `principal`.
    #[must_use]
    pub fn with_principal(self, principal: Principal) -> Self {
        self.edit(|inner| inner.principal = Some(principal))
    }

    /// The same context carrying the client's idempotency key.
    #[must_use]
    pub fn with_idempotency_key(self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.edit(|inner| inner.idempotency_key = Some(key))
    }

    /// The same context with a point in time by which the work must be done.
    #[must_use]
    pub fn with_deadline(self, deadline: Instant) -> Self {
        self.edit(|inner| inner.deadline = Some(deadline))
    }

    /// The same context for a request from `addr`.
    #[must_use]
    pub fn with_client_addr(self, addr: IpAddr) -> Self {
        self.edit(|inner| inner.client_addr = Some(addr))
    }

    /// The request's id, echoed to the client and present in every log line.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.inner.request_id
    }

    /// The distributed trace the request belongs to.
    #[must_use]
    pub fn trace(&self) -> &TraceContext {
        &self.inner.trace
    }

    /// Who is calling, when known.
    #[must_use]
    pub fn principal(&self) -> Option<&Principal> {
        self.inner.principal.as_ref()
    }

    /// The client's idempotency key, when it sent one.
    #[must_use]
    pub fn idempotency_key(&self) -> Option<&str> {
        self.inner.idempotency_key.as_deref()
    }

    /// When the work must be done by, when there is a limit.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The address the request came from, when known (for per-client limits).
    #[must_use]
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.inner.client_addr
    }

    /// The client's network, when its address is known: an IPv4 address as it
    /// is, an IPv6 address as its /64, which one subscriber usually holds whole.
    /// What per-client limits and anonymous callers' keys are scoped by.
    #[must_use]
    pub fn client_network(&self) -> Option<String> {
        self.inner.client_addr.map(network_of)
    }
}

/// The network `address` belongs to, as clients are told apart: an IPv4 address
/// (or an IPv4-mapped IPv6 one) as it is, an IPv6 address as its /64.
pub(crate) fn network_of(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_valid_traceparent_and_continues_it() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::parse(header).expect("valid");
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.header_value(), header);
        let child = trace.child();
        assert_eq!(child.trace_id(), trace.trace_id());
        assert_ne!(child.header_value(), header);
        assert!(TraceContext::parse(&child.header_value()).is_some());
    }

    #[test]
    fn rejects_malformed_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(
                TraceContext::parse(bad).is_none(),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn a_started_trace_is_valid() {
        let trace = TraceContext::start();
        assert_eq!(TraceContext::parse(&trace.header_value()), Some(trace));
    }

    #[test]
    fn builders_leave_the_original_untouched() {
        let base = RequestContext::new("req-1", TraceContext::start());
        let shared = base.clone();
        let signed_in = base.with_principal(Principal::new("u1", PrincipalKind::User));
        assert!(shared.principal().is_none());
        assert_eq!(signed_in.principal().map(Principal::subject), Some("u1"));
        assert_eq!(signed_in.request_id(), "req-1");
    }
}
