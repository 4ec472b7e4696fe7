//! What a client presents to prove who it is: bearer tokens (a real token
//! with bytes changed, or any text), API keys, and the `traceparent` it
//! sends along. Nothing panics; no token but the one issued verifies; no key
//! but the configured one authenticates; a trace context read back from its
//! own header is itself.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use strata_app_api::Secret;
use strata_app_api::application::{Principal, PrincipalKind, TraceContext};
use strata_app_api::http::auth::{
    ApiKeys, JwtAlgorithm, JwtKey, JwtSettings, ServiceCredential, TokenService,
};

const API_KEY: &str = "a service key of thirty-two bytes or more, for the fuzz target";

struct Fixture {
    tokens: TokenService,
    issued: String,
    keys: ApiKeys,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tokens = TokenService::new(JwtSettings {
            issuer: "https://shop.example".into(),
            audience: "shop".into(),
            algorithm: JwtAlgorithm::HS256,
            keys: vec![JwtKey::shared_secret(
                "k1",
                Secret::from("a signing secret of at least thirty-two bytes".to_owned()),
            )],
            signing_kid: Some("k1".into()),
            leeway: Duration::from_secs(30),
            access_token_lifetime: Duration::from_secs(3_600),
        })
        .expect("valid settings");
        let principal = Principal::new("user-1", PrincipalKind::User).with_role("customer");
        let issued = tokens.issue(&principal).expect("a token").token;
        let keys = ApiKeys::new([ServiceCredential::with_key(
            "payments",
            &Secret::from(API_KEY.to_owned()),
        )
        .expect("a credential")])
        .expect("keys");
        Fixture {
            tokens,
            issued,
            keys,
        }
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Bytes of the issued token to replace: (position, new byte).
    changes: Vec<(u16, u8)>,
    /// Text presented as it is, as a token, a key and a `traceparent`.
    text: String,
}

fuzz_target!(|input: Input| {
    let fixture = fixture();

    let mut token = fixture.issued.clone().into_bytes();
    for (position, byte) in &input.changes {
        let position = usize::from(*position) % token.len();
        token[position] = *byte;
    }
    if let Ok(token) = String::from_utf8(token)
        && fixture.tokens.verify(&token).is_ok()
    {
        assert_eq!(token, fixture.issued, "a changed token verified");
    }
    if fixture.tokens.verify(&input.text).is_ok() {
        assert_eq!(input.text, fixture.issued, "a token never issued verified");
    }

    if fixture.keys.authenticate(&input.text).is_ok() {
        assert_eq!(input.text, API_KEY, "a key never configured authenticated");
    }

    if let Some(trace) = TraceContext::parse(&input.text) {
        let again = TraceContext::parse(&trace.header_value()).expect("its own header reads");
        assert_eq!(again.header_value(), trace.header_value());
    }
});
