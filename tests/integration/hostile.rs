//! Hostile tokens through real HTTP: algorithm confusion, forged and mangled signatures, headers
//! that try to choose the key, malformed shapes, hostile claims and hostile key sets. Every case
//! runs against a federation that would accept the token but for the one thing under test, and
//! the first row of every table is a positive control: a gateway that refuses everything fails it.
//!
//! Tokens are sent form-encoded (percent-encoding `+`, `=`, `/`, whitespace, ...), so the gateway
//! sees exactly the bytes of each case.

use std::time::Duration;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Value, json};
use wif_gateway::testkit::{Jwt, b64url, b64url_decode, edited, segments};

use crate::support::gateway::{AUD, FED, Reply, SA, SUBJECT};
use crate::support::issuer::ConnectionCounter;
use crate::support::*;

/// Federation [`FED`] accepts caller tokens living at most this long (`exp − iat`).
const MAX_LIFETIME: i64 = 3600;
/// The gateway's leeway for `exp`, `nbf` and `iat` (the default).
const LEEWAY: i64 = 60;
/// Bound (in [`FED`]) to [`OTHER_SUBJECT`] only.
const SA_OTHER: &str = "ajesaother00000001";
/// Exists, but no federated credential names it.
const SA_UNBOUND: &str = "ajesaunbound000001";
const OTHER_SUBJECT: &str = "project_path:other/app:ref_type:branch:ref:main";
/// The gateway's cap on `subject_token` (docs/design.md#sizes).
const MAX_TOKEN: usize = 16 * 1024;

/// One row: `(name, service account, token, HTTP status, error_code)`.
type Row = (String, &'static str, String, u16, &'static str);

/// The usual scenario with every key kind the tables need, all published in one JWKS.
struct World {
    issuer: TestIssuer,
    /// `rsa-1`: RS256, JWK `alg: RS256`.
    rsa: TestKey,
    /// `ec-1`: ES256 (P-256).
    ec: TestKey,
    /// `rsa-pinned`: an RSA key whose JWK says `alg: RS256`, kept here to sign PS256 with it too.
    pinned: TestKey,
    /// `ec-raw`: a P-256 key, published without `alg`, that signs arbitrary bytes (headers that
    /// are not even JSON).
    raw: TestKey,
    gateway: Gateway,
}

async fn world() -> World {
    let issuer = TestIssuer::start().await;
    let rsa = TestKey::generate(KeyKind::Rs256, "rsa-1");
    let ec = TestKey::generate(KeyKind::Es256, "ec-1");
    let pinned = TestKey::generate(KeyKind::Rs256, "rsa-pinned");
    let raw = TestKey::generate(KeyKind::Es256, "ec-raw");
    issuer.set_raw_jwks(Some(json!({"keys": [
        rsa.public_jwk(),
        ec.public_jwk(),
        pinned.public_jwk(),
        edited(raw.public_jwk(), |jwk| {
            jwk.remove("alg");
        }),
    ]})));
    let source = format!(
        "jwks_url = {:?}\nallow_insecure_http = true",
        issuer.jwks_url()
    );
    let directory = [
        federation(
            FED,
            &issuer.issuer(),
            &[AUD],
            &format!("{source}\nmax_token_lifetime_seconds = {MAX_LIFETIME}"),
        ),
        federation(
            "fed-disabled",
            &format!("{}/disabled", issuer.issuer()),
            &[AUD],
            &format!("{source}\nenabled = false"),
        ),
        account(SA),
        account(SA_OTHER),
        account(SA_UNBOUND),
        binding(FED, SA, SUBJECT),
        binding(FED, SA_OTHER, OTHER_SUBJECT),
        binding("fed-disabled", SA, SUBJECT),
    ]
    .concat();
    let gateway = Gateway::start(&directory).await;
    World {
        issuer,
        rsa,
        ec,
        pinned,
        raw,
        gateway,
    }
}

/// One DER TLV (definite length).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).expect("short length"));
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | u8::try_from(bytes.len() - first).expect("length of length"));
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER holding the unsigned big-endian `value`.
fn der_uint(value: &[u8]) -> Vec<u8> {
    let start = value
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(value.len() - 1);
    let mut content = Vec::with_capacity(value.len() + 1);
    if value[start] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&value[start..]);
    der(0x02, &content)
}

/// The X.509 `SubjectPublicKeyInfo` of a PKCS#1 `RSAPublicKey` (what `BEGIN PUBLIC KEY` holds).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let algorithm = der(
        0x30,
        &[der(0x06, &RSA_ENCRYPTION), vec![0x05, 0x00]].concat(),
    );
    let key = der(0x03, &[&[0u8][..], pkcs1].concat());
    der(0x30, &[algorithm, key].concat())
}

fn pem_text(tag: &str, der: &[u8], ending: pem::LineEnding) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(ending),
    )
}

/// A 1024-bit RSA key (`openssl genrsa 1024`, e = 65537), published to be refused. aws-lc does
/// not sign with keys this small, so [`rsa1024_sign`] does it with schoolbook arithmetic.
const RSA1024_N: &str = "e0f5a22122253a22f40e3d656c1983397aad1bdd4006435ec8e3f4f7f2e73e11ea8fe9054ebd32f9600247175e7f3daed93364c4ba09e9f1131c9460f1f00bb4601f87d1aae1852e8c0e3cdec174175bc46e9e1963f5c004e9f7bb58777cd150a382569686bb378becbf61eface1181900beca01f10e14744d07fbd5d5b7b8e7";
const RSA1024_D: &str = "db5d4bbb2993c9ac39f704d1b8e6ebfa89f0f261fec3dcc039ff686abcb7d7e41aaa389d4f59d9b229782f20cfaa1e59393e0f7e72b7a623c9f22d929779efbe21655c366ecb8ca40f50d5726ffc8d515ac5c528929228154cf0fcf9cb048b06644e44e1637a1680ef09a403bdf8e110392d415355fda7e98bb2df8c69218711";

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Big-endian bytes to little-endian 32-bit limbs.
fn limbs(be: &[u8]) -> Vec<u32> {
    be.rchunks(4)
        .map(|chunk| chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        .collect()
}

/// `a · b mod n` (limbs), by a full product and bitwise shift-and-subtract reduction.
fn mul_mod(a: &[u32], b: &[u32], n: &[u32]) -> Vec<u32> {
    let mut product = vec![0u32; a.len() + b.len()];
    for (i, &x) in a.iter().enumerate() {
        let mut carry = 0u64;
        for (j, &y) in b.iter().enumerate() {
            let t = u64::from(x) * u64::from(y) + u64::from(product[i + j]) + carry;
            product[i + j] = t as u32;
            carry = t >> 32;
        }
        product[i + b.len()] = carry as u32;
    }
    let mut r = vec![0u32; n.len() + 1];
    for bit in (0..product.len() * 32).rev() {
        let mut carry = (product[bit / 32] >> (bit % 32)) & 1;
        for limb in r.iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        let below = r
            .iter()
            .enumerate()
            .rev()
            .map(|(i, &x)| (x, n.get(i).copied().unwrap_or(0)))
            .find(|(x, y)| x != y)
            .is_some_and(|(x, y)| x < y);
        if !below {
            let mut borrow = 0u64;
            for (i, limb) in r.iter_mut().enumerate() {
                let sub = u64::from(n.get(i).copied().unwrap_or(0)) + borrow;
                let cur = u64::from(*limb);
                if cur >= sub {
                    *limb = (cur - sub) as u32;
                    borrow = 0;
                } else {
                    *limb = ((1u64 << 32) + cur - sub) as u32;
                    borrow = 1;
                }
            }
        }
    }
    r.truncate(n.len());
    r
}

/// RS256 (RSASSA-PKCS1-v1_5, SHA-256) with the 1024-bit key, checked with aws-lc's legacy
/// verifier so that the token is genuinely signed by that key.
fn rsa1024_sign(header: &Value, payload: &[u8]) -> String {
    const SHA256_DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let n_bytes = from_hex(RSA1024_N);
    let jwt = Jwt::raw_payload(header, payload);
    let input = jwt.signing_input();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    let k = n_bytes.len();
    let t_len = SHA256_DIGEST_INFO.len() + digest.as_ref().len();
    let mut em = vec![0x00, 0x01];
    em.resize(k - t_len - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&SHA256_DIGEST_INFO);
    em.extend_from_slice(digest.as_ref());
    let n = limbs(&n_bytes);
    let base = limbs(&em);
    let mut acc = vec![1u32];
    for byte in from_hex(RSA1024_D) {
        for bit in (0..8).rev() {
            acc = mul_mod(&acc, &acc, &n);
            if (byte >> bit) & 1 == 1 {
                acc = mul_mod(&acc, &base, &n);
            }
        }
    }
    let sig: Vec<u8> = acc.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    RsaPublicKeyComponents {
        n: &n_bytes[..],
        e: &[1u8, 0, 1][..],
    }
    .verify(
        &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        input.as_bytes(),
        &sig,
    )
    .expect("the 1024-bit signature verifies");
    jwt.with_signature(&sig)
}

/// The tutorial's form, every value percent-encoded.
fn form_body(account: &str, token: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        )
        .append_pair(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        )
        .append_pair("audience", account)
        .append_pair("subject_token", token)
        .append_pair(
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        )
        .finish()
}

/// Asserts that no part of the token (the whole, or any segment long enough to be
/// recognisable) appears in the answer.
fn assert_not_echoed(name: &str, reply: &Reply, token: &str) {
    let trimmed = token.trim();
    let pieces =
        std::iter::once(trimmed).chain(trimmed.split(|c: char| c == '.' || c.is_whitespace()));
    for piece in pieces.filter(|p| p.len() >= 16) {
        assert!(
            !reply.text.contains(piece),
            "{name}: the token is echoed: {}",
            reply.text
        );
    }
}

/// Runs the rows against `gateway`; the first must be a positive control.
async fn run_table(gateway: &Gateway, rows: Vec<Row>) {
    assert_eq!(
        rows.first().map(|r| r.3),
        Some(200),
        "the first row is a positive control"
    );
    for (name, account, token, status, code) in rows {
        let reply = gateway.post_form(&form_body(account, &token)).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        assert_eq!(reply.headers["cache-control"], "no-store", "{name}");
        if status == 200 {
            assert!(!reply.access_token().is_empty(), "{name}: {}", reply.text);
            continue;
        }
        assert_eq!(reply.code(), code, "{name}: {}", reply.text);
        let expected_error = match code {
            "unknown_service_account" => "invalid_target",
            _ => "invalid_grant",
        };
        assert_eq!(reply.error(), expected_error, "{name}: {}", reply.text);
        assert!(
            !reply.description().is_empty(),
            "{name}: a description names the rule"
        );
        assert!(reply.body.get("access_token").is_none(), "{name}");
        assert_not_echoed(&name, &reply, &token);
    }
}

#[tokio::test]
async fn algorithms_come_from_the_key_never_the_header() {
    let w = world().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let ed = TestKey::generate(KeyKind::EdDsa, "ed-1");
    let pkcs1 = w.rsa.rsa_public_der_pkcs1().expect("RSA key");
    let spki = rsa_spki(&pkcs1);
    // The SPKI built here is a real public key: it verifies the key's own tokens.
    let rs = w.rsa.sign(&good);
    let (h, p, s) = segments(&rs);
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &spki)
        .verify(format!("{h}.{p}").as_bytes(), &b64url_decode(s))
        .expect("SPKI of rsa-1");
    let pem_spki = pem_text("PUBLIC KEY", &spki, pem::LineEnding::LF);
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("PKCS#1 DER public key", pkcs1.clone()),
        ("SPKI DER public key", spki.clone()),
        (
            "PKCS#1 PEM public key",
            pem_text("RSA PUBLIC KEY", &pkcs1, pem::LineEnding::LF).into_bytes(),
        ),
        ("SPKI PEM public key", pem_spki.clone().into_bytes()),
        (
            "SPKI PEM public key, no final newline",
            pem_spki.trim_end().as_bytes().to_vec(),
        ),
        (
            "SPKI PEM public key, CRLF",
            pem_text("PUBLIC KEY", &spki, pem::LineEnding::CRLF).into_bytes(),
        ),
        (
            "public JWK JSON",
            serde_json::to_vec(&w.rsa.public_jwk()).expect("JWK"),
        ),
        (
            "JWKS document JSON",
            serde_json::to_vec(&w.issuer.jwks()).expect("JWKS"),
        ),
        (
            "modulus n",
            b64url_decode(w.rsa.public_jwk()["n"].as_str().expect("n")),
        ),
    ];
    let mut rows: Vec<Row> = vec![
        ("positive control".into(), SA, w.rsa.sign(&good), 200, ""),
        (
            "positive control, ES256".into(),
            SA,
            w.ec.sign(&good),
            200,
            "",
        ),
        (
            "positive control, RS256 with the pinned key".into(),
            SA,
            w.pinned
                .sign_raw(&json!({"alg": "RS256", "kid": "rsa-pinned"}), &payload),
            200,
            "",
        ),
    ];
    let unsupported =
        |name: String, token: String| -> Row { (name, SA, token, 400, "unsupported_algorithm") };
    let unsigned =
        |alg: &str| Jwt::raw_payload(&json!({"alg": alg, "kid": "rsa-1"}), &payload).unsigned();
    for (name, token) in [
        ("alg none, empty signature", unsigned("none")),
        ("alg None, empty signature", unsigned("None")),
        ("alg NONE, empty signature", unsigned("NONE")),
        (
            "alg none, the issuer's RS256 signature",
            w.rsa
                .sign_raw(&json!({"alg": "none", "kid": "rsa-1"}), &payload),
        ),
        (
            "alg None, the issuer's ES256 signature",
            w.ec.sign_raw(&json!({"alg": "None", "kid": "ec-1"}), &payload),
        ),
        (
            "alg NONE, a garbage signature",
            format!("{}c2lnbmF0dXJl", unsigned("NONE")),
        ),
    ] {
        rows.push(unsupported(name.into(), token));
    }
    rows.push(unsupported(
        "alg none without kid, empty signature".into(),
        Jwt::raw_payload(&json!({"alg": "none"}), &payload).unsigned(),
    ));
    for (what, secret) in &secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"});
            let token = Jwt::raw_payload(&header, &payload).sign_hmac(alg, secret);
            rows.push(unsupported(format!("{alg} keyed with the {what}"), token));
        }
    }
    rows.push(unsupported(
        "HS256 keyed with the PKCS#1 DER public key, no kid".into(),
        Jwt::raw_payload(&json!({"alg": "HS256"}), &payload).sign_hmac("HS256", &pkcs1),
    ));
    for (name, token) in [
        (
            "RS256 header on the EC key, signed by it",
            w.ec.sign_raw(&json!({"alg": "RS256", "kid": "ec-1"}), &payload),
        ),
        (
            "RS256 header on the EC key, signed by the RSA key",
            w.rsa
                .sign_raw(&json!({"alg": "RS256", "kid": "ec-1"}), &payload),
        ),
        (
            "ES256 header on the RSA key, signed by it",
            w.rsa
                .sign_raw(&json!({"alg": "ES256", "kid": "rsa-1"}), &payload),
        ),
        (
            "ES256 header on the RSA key, signed by the EC key",
            w.ec.sign_raw(&json!({"alg": "ES256", "kid": "rsa-1"}), &payload),
        ),
        (
            "EdDSA header on the P-256 key, signed with Ed25519",
            ed.sign_raw(&json!({"alg": "EdDSA", "kid": "ec-1"}), &payload),
        ),
        (
            "ES384 header on the P-256 key",
            w.ec.sign_raw(&json!({"alg": "ES384", "kid": "ec-1"}), &payload),
        ),
        (
            "PS256 on the RSA key whose JWK says RS256, signed PSS by it",
            Jwt::raw_payload(&json!({"alg": "PS256", "kid": "rsa-pinned"}), &payload)
                .sign_rsa(&w.pinned, "PS256"),
        ),
        (
            "RS384 on the RSA key whose JWK says RS256, signed RS384 by it",
            Jwt::raw_payload(&json!({"alg": "RS384", "kid": "rsa-pinned"}), &payload)
                .sign_rsa(&w.pinned, "RS384"),
        ),
    ] {
        rows.push(unsupported(name.into(), token));
    }
    for alg in [
        "RS1",
        "ES512",
        "",
        "rs256",
        "RS256 ",
        "ES256K",
        "HS256\u{0}",
        "RSA-OAEP",
    ] {
        rows.push(unsupported(
            format!("unknown alg {alg:?}"),
            w.rsa
                .sign_raw(&json!({"alg": alg, "kid": "rsa-1"}), &payload),
        ));
    }
    for (name, header) in [
        ("alg missing", json!({"kid": "rsa-1"})),
        ("alg null", json!({"alg": null, "kid": "rsa-1"})),
        ("alg a number", json!({"alg": 256, "kid": "rsa-1"})),
        ("alg an array", json!({"alg": ["RS256"], "kid": "rsa-1"})),
    ] {
        rows.push((
            name.into(),
            SA,
            w.rsa.sign_raw(&header, &payload),
            400,
            "malformed_token",
        ));
    }
    run_table(&w.gateway, rows).await;
}

#[tokio::test]
async fn signatures_must_verify_with_the_issuers_key() {
    let w = world().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let rs = w.rsa.sign(&good);
    let es = w.ec.sign(&good);
    let (rs_head, rs_payload, rs_sig) = segments(&rs);
    let (es_head, es_payload, es_sig) = segments(&es);
    let rs_sig = b64url_decode(rs_sig);
    let es_sig = b64url_decode(es_sig);
    assert_eq!(es_sig.len(), 64, "ES256 signatures are raw r‖s");
    let with_sig =
        |head: &str, body: &str, sig: &[u8]| Jwt::encoded(head, body).with_signature(sig);
    // CVE-2022-21449: r = s = 0, and r = s = n (the P-256 group order).
    let order = from_hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    // The same (r, s) as ASN.1 DER, which is a valid signature, but not in JOSE form.
    let der_sig = der(
        0x30,
        &[der_uint(&es_sig[..32]), der_uint(&es_sig[32..])].concat(),
    );
    let jwk = w.ec.public_jwk();
    let point = [
        &[4u8][..],
        &b64url_decode(jwk["x"].as_str().expect("x")),
        &b64url_decode(jwk["y"].as_str().expect("y")),
    ]
    .concat();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &point)
        .verify(format!("{es_head}.{es_payload}").as_bytes(), &der_sig)
        .expect("the DER form is the same valid signature");
    let tampered = b64url(
        edited(good.clone(), |c| {
            c.insert("sub".into(), json!(OTHER_SUBJECT));
        })
        .to_string(),
    );
    let extended = b64url(
        edited(good.clone(), |c| {
            c.insert("exp".into(), json!(now() + 3000));
        })
        .to_string(),
    );
    let retyped = b64url(json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}).to_string());
    let other_token = w.rsa.sign(&claims(&w.issuer.issuer(), SUBJECT, AUD));
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, rs.clone(), 200, ""),
        ("positive control, ES256".into(), SA, es.clone(), 200, ""),
        (
            "another RSA key under kid rsa-1".into(),
            SA,
            TestKey::generate(KeyKind::Rs256, "rsa-1").sign(&good),
            400,
            "bad_signature",
        ),
        (
            "another EC key under kid ec-1".into(),
            SA,
            TestKey::generate(KeyKind::Es256, "ec-1").sign(&good),
            400,
            "bad_signature",
        ),
        (
            "another RSA key, no kid".into(),
            SA,
            TestKey::generate(KeyKind::Rs256, "x").sign_raw(&json!({"alg": "RS256"}), &payload),
            400,
            "bad_signature",
        ),
        (
            "payload changed after signing (sub)".into(),
            SA_OTHER,
            format!("{rs_head}.{tampered}.{}", b64url(&rs_sig)),
            400,
            "bad_signature",
        ),
        (
            "payload changed after signing (exp)".into(),
            SA,
            format!("{rs_head}.{extended}.{}", b64url(&rs_sig)),
            400,
            "bad_signature",
        ),
        (
            "header changed after signing".into(),
            SA,
            format!("{retyped}.{rs_payload}.{}", b64url(&rs_sig)),
            400,
            "bad_signature",
        ),
        (
            "signature of another token".into(),
            SA,
            format!("{rs_head}.{rs_payload}.{}", segments(&other_token).2),
            400,
            "bad_signature",
        ),
        (
            "RSA signature truncated to half".into(),
            SA,
            with_sig(rs_head, rs_payload, &rs_sig[..rs_sig.len() / 2]),
            400,
            "bad_signature",
        ),
        (
            "RSA signature without its last byte".into(),
            SA,
            with_sig(rs_head, rs_payload, &rs_sig[..rs_sig.len() - 1]),
            400,
            "bad_signature",
        ),
        (
            "RSA signature with a leading zero byte".into(),
            SA,
            with_sig(rs_head, rs_payload, &[&[0u8][..], &rs_sig].concat()),
            400,
            "bad_signature",
        ),
        (
            "ES256 signature truncated to r".into(),
            SA,
            with_sig(es_head, es_payload, &es_sig[..32]),
            400,
            "bad_signature",
        ),
        (
            "empty signature, RS256".into(),
            SA,
            format!("{rs_head}.{rs_payload}."),
            400,
            "bad_signature",
        ),
        (
            "empty signature, ES256".into(),
            SA,
            format!("{es_head}.{es_payload}."),
            400,
            "bad_signature",
        ),
        (
            "ES256 r = s = 0 (CVE-2022-21449)".into(),
            SA,
            with_sig(es_head, es_payload, &[0u8; 64]),
            400,
            "bad_signature",
        ),
        (
            "ES256 r = s = 0, no kid".into(),
            SA,
            with_sig(
                &b64url(json!({"alg": "ES256"}).to_string()),
                es_payload,
                &[0u8; 64],
            ),
            400,
            "bad_signature",
        ),
        (
            "ES256 r = s = n".into(),
            SA,
            with_sig(es_head, es_payload, &[order.clone(), order].concat()),
            400,
            "bad_signature",
        ),
        (
            "ES256 signature DER-encoded".into(),
            SA,
            with_sig(es_head, es_payload, &der_sig),
            400,
            "bad_signature",
        ),
    ];
    run_table(&w.gateway, rows).await;
}

#[tokio::test]
async fn headers_that_name_keys_are_refused_and_never_followed() {
    let w = world().await;
    let counter = ConnectionCounter::start().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let attacker = TestKey::generate(KeyKind::Rs256, "attacker-1");
    let attacker_ec = TestKey::generate(KeyKind::Es256, "attacker-ec");
    let jwks_url = format!("{}/jwks.json", counter.url());
    let cert_url = format!("{}/cert.pem", counter.url());
    let attacker_spki =
        STANDARD.encode(rsa_spki(&attacker.rsa_public_der_pkcs1().expect("RSA key")));
    let forbidden =
        |name: &str, token: String| -> Row { (name.into(), SA, token, 400, "forbidden_header") };
    let real = |header: Value| w.rsa.sign_raw(&header, &payload);
    let forged = |header: Value| attacker.sign_raw(&header, &payload);
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, w.rsa.sign(&good), 200, ""),
        forbidden(
            "jku at an attacker URL, attacker's key",
            forged(json!({"alg": "RS256", "kid": "attacker-1", "jku": jwks_url})),
        ),
        forbidden(
            "jku at an attacker URL, issuer's key",
            real(json!({"alg": "RS256", "kid": "rsa-1", "jku": jwks_url})),
        ),
        forbidden(
            "jku at the issuer's own JWKS",
            real(json!({"alg": "RS256", "kid": "rsa-1", "jku": w.issuer.jwks_url()})),
        ),
        forbidden(
            "x5u at an attacker URL, attacker's key",
            forged(json!({"alg": "RS256", "kid": "attacker-1", "x5u": cert_url})),
        ),
        forbidden(
            "x5u at an attacker URL, issuer's key",
            real(json!({"alg": "RS256", "kid": "rsa-1", "x5u": cert_url})),
        ),
        forbidden(
            "embedded jwk of the attacker under the issuer's kid (CVE-2018-0114)",
            TestKey::generate(KeyKind::Rs256, "rsa-1").sign_raw(
                &json!({"alg": "RS256", "kid": "rsa-1", "jwk": attacker.public_jwk()}),
                &payload,
            ),
        ),
        forbidden(
            "embedded jwk of the attacker, no kid",
            forged(json!({"alg": "RS256", "jwk": attacker.public_jwk()})),
        ),
        forbidden(
            "embedded jwk of an attacker EC key",
            attacker_ec.sign_raw(
                &json!({"alg": "ES256", "jwk": attacker_ec.public_jwk()}),
                &payload,
            ),
        ),
        forbidden(
            "embedded jwk of the issuer's own key",
            real(json!({"alg": "RS256", "kid": "rsa-1", "jwk": w.rsa.public_jwk()})),
        ),
        forbidden(
            "x5c with the attacker's key",
            forged(json!({"alg": "RS256", "x5c": [attacker_spki]})),
        ),
        forbidden(
            "x5c, issuer's key",
            real(json!({"alg": "RS256", "kid": "rsa-1", "x5c": [attacker_spki]})),
        ),
        forbidden(
            "jku, x5u, jwk and x5c together",
            forged(json!({
                "alg": "RS256", "jku": jwks_url, "x5u": cert_url,
                "jwk": attacker.public_jwk(), "x5c": [attacker_spki],
            })),
        ),
    ];
    run_table(&w.gateway, rows).await;
    // Anything fetched in the background would have connected by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counter.connections(),
        0,
        "the gateway contacted a URL named in a token"
    );
}

#[tokio::test]
async fn hostile_header_values_are_refused() {
    let w = world().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let rsa = |header: Value| w.rsa.sign_raw(&header, &payload);
    let kid = |kid: Value| rsa(json!({"alg": "RS256", "typ": "JWT", "kid": kid}));
    let row = |name: &str, token: String, code: &'static str| -> Row {
        (name.into(), SA, token, 400, code)
    };
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, w.rsa.sign(&good), 200, ""),
        (
            "positive control, no kid".into(),
            SA,
            rsa(json!({"alg": "RS256"})),
            200,
            "",
        ),
        row(
            "kid path traversal",
            kid(json!("../../etc/passwd")),
            "unknown_key",
        ),
        row(
            "kid path traversal to the JWKS",
            kid(json!("../../oauth/discovery/keys")),
            "unknown_key",
        ),
        row(
            "kid SQL injection",
            kid(json!("' OR 1=1 --")),
            "unknown_key",
        ),
        row(
            "kid SQL injection after the real kid",
            kid(json!("rsa-1' OR '1'='1")),
            "unknown_key",
        ),
        row("kid empty", kid(json!("")), "unknown_key"),
        row("kid differing by case", kid(json!("RSA-1")), "unknown_key"),
        row("kid with a NUL", kid(json!("rsa-1\u{0}")), "unknown_key"),
        row(
            "kid of 256 bytes (the limit)",
            kid(json!("k".repeat(256))),
            "unknown_key",
        ),
        row(
            "kid of 257 bytes",
            kid(json!("k".repeat(257))),
            "malformed_token",
        ),
        row(
            "kid of 10 KiB",
            kid(json!("k".repeat(10 * 1024))),
            "malformed_token",
        ),
        row("kid a number", kid(json!(1)), "malformed_token"),
        row(
            "kid an object",
            kid(json!({"kid": "rsa-1"})),
            "malformed_token",
        ),
        row("kid an array", kid(json!(["rsa-1"])), "malformed_token"),
        row("kid a boolean", kid(json!(true)), "malformed_token"),
        row(
            "crit naming exp",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1})),
            "forbidden_header",
        ),
        row(
            "crit empty",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "crit": []})),
            "forbidden_header",
        ),
        row(
            "crit naming b64, with b64 false",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false})),
            "forbidden_header",
        ),
        row(
            "crit naming an unknown extension",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "crit": ["x-ext"], "x-ext": 1})),
            "forbidden_header",
        ),
        row(
            "crit a string",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "crit": "exp"})),
            "forbidden_header",
        ),
        row(
            "b64 false",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "b64": false})),
            "forbidden_header",
        ),
        row(
            "b64 true",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "b64": true})),
            "forbidden_header",
        ),
        row(
            "zip DEF",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "zip": "DEF"})),
            "forbidden_header",
        ),
        row(
            "enc in a JWS",
            rsa(json!({"alg": "RS256", "kid": "rsa-1", "enc": "A256GCM"})),
            "forbidden_header",
        ),
    ];
    run_table(&w.gateway, rows).await;
}

/// `"kid": null` is not a string (RFC 7515 §4.1.4); `kid: 1` and `kid: {}` are refused.
#[tokio::test]
async fn kid_null_is_refused() {
    let w = world().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, w.rsa.sign(&good), 200, ""),
        (
            "kid null".into(),
            SA,
            w.rsa.sign_raw(
                &json!({"alg": "RS256", "typ": "JWT", "kid": null}),
                &payload,
            ),
            400,
            "malformed_token",
        ),
    ];
    run_table(&w.gateway, rows).await;
}

/// Any `crit` member is refused (docs/design.md#header-hygiene), including a null one.
#[tokio::test]
async fn crit_null_is_refused() {
    let w = world().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, w.rsa.sign(&good), 200, ""),
        (
            "crit null".into(),
            SA,
            w.rsa.sign_raw(
                &json!({"alg": "RS256", "kid": "rsa-1", "crit": null}),
                &payload,
            ),
            400,
            "forbidden_header",
        ),
    ];
    run_table(&w.gateway, rows).await;
}

#[tokio::test]
async fn token_shapes_other_than_a_compact_jws_are_refused() {
    let w = world().await;
    let iss = w.issuer.issuer();
    let good = claims(&iss, SUBJECT, AUD);
    let text = good.to_string();
    let payload = text.clone().into_bytes();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"});
    let valid = w.rsa.sign(&good);
    let (head, body, sig) = segments(&valid);
    let malformed =
        |name: &str, token: String| -> Row { (name.into(), SA, token, 400, "malformed_token") };
    // A real JWE shape: protected header, encrypted key, IV, ciphertext, tag.
    let jwe = [
        b64url(json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa-1"}).to_string()),
        b64url([7u8; 256]),
        b64url([1u8; 12]),
        b64url(&payload),
        b64url([2u8; 16]),
    ]
    .join(".");
    // A signature that has `-` or `_`, to be rewritten as standard base64.
    let with_url_chars = std::iter::repeat_with(|| w.rsa.sign(&claims(&iss, SUBJECT, AUD)))
        .take(100)
        .find(|t| segments(t).2.contains(['-', '_']))
        .expect("a signature with - or _");
    let (h2, b2, s2) = segments(&with_url_chars);
    let standard_sig = s2.replace('-', "+").replace('_', "/");
    // Padding: the signature as padded base64url, and a header that needs padding, signed.
    let padded_sig = URL_SAFE.encode(b64url_decode(sig));
    assert!(padded_sig.ends_with('='));
    let mut padded_header = br#"{"alg":"ES256","kid":"ec-raw"}"#.to_vec();
    while padded_header.len().is_multiple_of(3) {
        padded_header.insert(padded_header.len() - 1, b' ');
    }
    let padded_header = URL_SAFE.encode(&padded_header);
    assert!(padded_header.ends_with('='));
    // Non-canonical base64url: the last character of a 256-byte signature carries 4 unused
    // bits; setting one decodes to the same bytes.
    let non_canonical = {
        let last = sig.chars().last().expect("signature");
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.find(last).expect("base64url");
        let bumped = alphabet.chars().nth(index | 1).expect("alphabet");
        format!("{head}.{body}.{}{bumped}", &sig[..sig.len() - 1])
    };
    // Standard base64 of a header and payload made to hold `/` (six `?` always include a
    // 3-byte group `???`, which encodes as `Pz8/`) and a padding `=`.
    let standard_header = STANDARD.encode(br#"{"alg":"ES256","kid":"ec-raw","x":"??????"}"#);
    let standard_payload = STANDARD.encode(
        edited(good.clone(), |c| {
            c.insert("x".into(), json!("??????"));
        })
        .to_string(),
    );
    for segment in [&standard_header, &standard_payload] {
        assert!(segment.contains('/'), "{segment}");
    }
    let mut not_utf8 = payload.clone();
    let at = text.find(SUBJECT).expect("sub");
    not_utf8.insert(at, 0xff);
    // The largest token the size cap allows, and one byte more.
    let sized = |target: usize| {
        let overhead = head.len() + sig.len() + 2;
        let mut pad = (target - overhead) * 3 / 4 - text.len() - 20;
        loop {
            let c = edited(good.clone(), |c| {
                c.insert("pad".into(), json!("x".repeat(pad + 1)));
            });
            if overhead + b64url(c.to_string()).len() > target {
                break;
            }
            pad += 1;
        }
        w.rsa.sign(&edited(good.clone(), |c| {
            c.insert("pad".into(), json!("x".repeat(pad)));
        }))
    };
    let at_limit = sized(MAX_TOKEN);
    assert!(
        (MAX_TOKEN - 1..=MAX_TOKEN).contains(&at_limit.len()),
        "{}",
        at_limit.len()
    );
    let over_limit = w.rsa.sign(&edited(good.clone(), |c| {
        c.insert("pad".into(), json!("x".repeat(17 * 1024)));
    }));
    let dup = |claims: &str| w.rsa.sign_raw(&header, claims.as_bytes());
    let exp = good["exp"].clone();
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, valid.clone(), 200, ""),
        (
            "leading white space".into(),
            SA,
            format!(" \t{valid}"),
            200,
            "",
        ),
        (
            "trailing newline (a token file)".into(),
            SA,
            format!("{valid}\n"),
            200,
            "",
        ),
        (
            "white space on both sides".into(),
            SA,
            format!("\r\n {valid} \r\n"),
            200,
            "",
        ),
        (
            format!("{} bytes, at the size limit", at_limit.len()),
            SA,
            at_limit,
            200,
            "",
        ),
        (
            format!("{} bytes, over 16 KiB", over_limit.len()),
            SA,
            over_limit,
            400,
            "token_too_large",
        ),
        (
            "over 16 KiB of white space around a valid token".into(),
            SA,
            format!("{valid}{}", " ".repeat(MAX_TOKEN)),
            200,
            "",
        ),
        malformed("JWE (5 segments)", jwe),
        malformed(
            "valid JWS with two more segments",
            format!("{valid}.e30.e30"),
        ),
        malformed("2 segments", format!("{head}.{body}")),
        malformed("4 segments", format!("{valid}.{sig}")),
        malformed("1 segment", head.to_owned()),
        malformed("empty header segment", format!(".{body}.{sig}")),
        malformed("empty payload segment", format!("{head}..{sig}")),
        malformed("all segments empty", "..".to_owned()),
        malformed("five empty segments", "....".to_owned()),
        malformed(
            "invalid base64url character in the payload",
            format!("{head}.{}!.{sig}", &body[..body.len() - 1]),
        ),
        malformed(
            "invalid base64url character in the header",
            format!("*{}.{body}.{sig}", &head[1..]),
        ),
        malformed(
            "invalid base64url character in the signature",
            format!("{head}.{body}.{}$", &sig[..sig.len() - 1]),
        ),
        malformed(
            "padded base64url signature",
            format!("{head}.{body}.{padded_sig}"),
        ),
        malformed(
            "padded base64url header, signed as padded",
            Jwt::encoded(&padded_header, &b64url(&payload)).sign(&w.raw),
        ),
        malformed(
            "standard base64 signature (+ and /)",
            format!("{h2}.{b2}.{standard_sig}"),
        ),
        malformed(
            "standard base64 header and payload",
            Jwt::encoded(&standard_header, &standard_payload).sign(&w.raw),
        ),
        malformed("non-canonical base64url signature", non_canonical),
        malformed(
            "header not UTF-8",
            Jwt::raw(
                &[
                    &br#"{"alg":"ES256","kid":"ec-raw","x":""#[..],
                    &[0xff, 0xfe],
                    br#""}"#,
                ]
                .concat(),
                &payload,
            )
            .sign(&w.raw),
        ),
        malformed("payload not UTF-8", w.rsa.sign_raw(&header, &not_utf8)),
        malformed(
            "header a JSON array",
            w.rsa.sign_raw(&json!(["RS256", "rsa-1"]), &payload),
        ),
        malformed(
            "header a JSON string",
            w.rsa.sign_raw(&json!("RS256"), &payload),
        ),
        malformed(
            "header a JSON number",
            w.rsa.sign_raw(&json!(256), &payload),
        ),
        malformed("header JSON null", w.rsa.sign_raw(&json!(null), &payload)),
        malformed(
            "header not JSON",
            Jwt::raw(br#"{"alg":"ES256","kid":"ec-raw""#, &payload).sign(&w.raw),
        ),
        malformed(
            "header with alg twice",
            Jwt::raw(br#"{"alg":"none","kid":"ec-raw","alg":"ES256"}"#, &payload).sign(&w.raw),
        ),
        malformed(
            "header with kid twice",
            Jwt::raw(br#"{"alg":"ES256","kid":"rsa-1","kid":"ec-raw"}"#, &payload).sign(&w.raw),
        ),
        malformed(
            "payload a JSON array",
            w.rsa.sign_raw(&header, format!("[{text}]").as_bytes()),
        ),
        malformed(
            "payload a JSON string",
            w.rsa.sign_raw(&header, json!(text).to_string().as_bytes()),
        ),
        malformed("payload a JSON number", w.rsa.sign_raw(&header, b"1")),
        malformed("payload JSON null", w.rsa.sign_raw(&header, b"null")),
        malformed(
            "payload behind a byte-order mark",
            w.rsa
                .sign_raw(&header, format!("\u{feff}{text}").as_bytes()),
        ),
        (
            "payload JSON cut short".into(),
            SA,
            w.rsa.sign_raw(&header, &payload[..payload.len() - 1]),
            400,
            "invalid_claim",
        ),
        (
            "payload with trailing bytes".into(),
            SA,
            w.rsa.sign_raw(&header, format!("{text}{{}}").as_bytes()),
            400,
            "invalid_claim",
        ),
        (
            "sub twice, bound one first".into(),
            SA,
            dup(&format!(
                r#"{{"iss":"{iss}","sub":"{SUBJECT}","sub":"{OTHER_SUBJECT}","aud":"{AUD}","exp":{exp}}}"#
            )),
            400,
            "invalid_claim",
        ),
        (
            "sub twice, bound one last".into(),
            SA,
            dup(&format!(
                r#"{{"iss":"{iss}","sub":"{OTHER_SUBJECT}","sub":"{SUBJECT}","aud":"{AUD}","exp":{exp}}}"#
            )),
            400,
            "invalid_claim",
        ),
        (
            "sub twice, same value".into(),
            SA,
            dup(&format!(
                r#"{{"iss":"{iss}","sub":"{SUBJECT}","sub":"{SUBJECT}","aud":"{AUD}","exp":{exp}}}"#
            )),
            400,
            "invalid_claim",
        ),
        (
            "iss twice".into(),
            SA,
            dup(&format!(
                r#"{{"iss":"https://evil.example","iss":"{iss}","sub":"{SUBJECT}","aud":"{AUD}","exp":{exp}}}"#
            )),
            400,
            "invalid_claim",
        ),
        (
            "aud twice".into(),
            SA,
            dup(&format!(
                r#"{{"iss":"{iss}","sub":"{SUBJECT}","aud":"x","aud":"{AUD}","exp":{exp}}}"#
            )),
            400,
            "invalid_claim",
        ),
        (
            "exp twice".into(),
            SA,
            dup(&format!(
                r#"{{"iss":"{iss}","sub":"{SUBJECT}","aud":"{AUD}","exp":1,"exp":{exp}}}"#
            )),
            400,
            "invalid_claim",
        ),
        malformed("space inside the token", format!("{head}. {body}.{sig}")),
        malformed(
            "newline inside the signature",
            format!("{head}.{body}.{}\n{}", &sig[..10], &sig[10..]),
        ),
        malformed(
            "tab inside the payload",
            format!("{head}.{}\t{}.{sig}", &body[..10], &body[10..]),
        ),
        malformed("trailing NUL", format!("{valid}\u{0}")),
    ];
    run_table(&w.gateway, rows).await;
}

#[tokio::test]
async fn hostile_claims_are_refused() {
    let w = world().await;
    let iss = w.issuer.issuer();
    let now = now();
    let good = claims(&iss, SUBJECT, AUD);
    let sign = |c: &Value| w.rsa.sign(c);
    let set = |name: &str, value: Value| {
        sign(&edited(good.clone(), |c| {
            c.insert(name.into(), value);
        }))
    };
    let unset = |name: &str| {
        sign(&edited(good.clone(), |c| {
            c.remove(name);
        }))
    };
    let row = |name: &str, token: String, code: &'static str| -> Row {
        (name.into(), SA, token, 400, code)
    };
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, sign(&good), 200, ""),
        (
            "aud an array holding the trusted value".into(),
            SA,
            set("aud", json!(["https://vault.example", AUD])),
            200,
            "",
        ),
        (
            "nbf inside the leeway".into(),
            SA,
            set("nbf", json!(now + LEEWAY / 2)),
            200,
            "",
        ),
        (
            "lifetime exactly the federation maximum".into(),
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iat".into(), json!(now));
                c.insert("exp".into(), json!(now + MAX_LIFETIME));
            })),
            200,
            "",
        ),
        row("exp missing", unset("exp"), "missing_claim"),
        row("exp null", set("exp", Value::Null), "missing_claim"),
        row(
            "exp past",
            set("exp", json!(now - 2 * LEEWAY)),
            "token_expired",
        ),
        row(
            "exp a string",
            set("exp", json!("tomorrow")),
            "invalid_claim",
        ),
        row(
            "exp a numeric string",
            set("exp", json!((now + 300).to_string())),
            "invalid_claim",
        ),
        row("exp a boolean", set("exp", json!(true)), "invalid_claim"),
        row("exp 1e300", set("exp", json!(1e300)), "invalid_claim"),
        row(
            "exp 99999999999999",
            set("exp", json!(99_999_999_999_999i64)),
            "invalid_claim",
        ),
        row("exp u64::MAX", set("exp", json!(u64::MAX)), "invalid_claim"),
        row("exp negative", set("exp", json!(-1)), "token_expired"),
        row("exp -1e300", set("exp", json!(-1e300)), "invalid_claim"),
        row(
            "nbf beyond the leeway",
            set("nbf", json!(now + 2 * LEEWAY)),
            "token_not_yet_valid",
        ),
        row("nbf 1e300", set("nbf", json!(1e300)), "invalid_claim"),
        row(
            "iat beyond the leeway",
            set("iat", json!(now + 2 * LEEWAY)),
            "token_issued_in_future",
        ),
        row(
            "lifetime one second over the maximum",
            sign(&edited(good.clone(), |c| {
                c.insert("iat".into(), json!(now));
                c.insert("exp".into(), json!(now + MAX_LIFETIME + 1));
            })),
            "token_lifetime_too_long",
        ),
        row(
            "lifetime over the maximum, no iat",
            sign(&edited(good.clone(), |c| {
                c.remove("iat");
                c.insert("exp".into(), json!(now + MAX_LIFETIME + 120));
            })),
            "token_lifetime_too_long",
        ),
        row(
            "lifetime over the maximum, issued long ago",
            set("iat", json!(now - 2 * MAX_LIFETIME)),
            "token_lifetime_too_long",
        ),
        row("iss missing", unset("iss"), "missing_claim"),
        row("iss empty", set("iss", json!("")), "missing_claim"),
        row(
            "iss different",
            set("iss", json!("https://evil.example")),
            "unknown_issuer",
        ),
        row(
            "iss with a trailing slash",
            set("iss", json!(format!("{iss}/"))),
            "unknown_issuer",
        ),
        row(
            "iss differing by case",
            set("iss", json!(iss.to_uppercase())),
            "unknown_issuer",
        ),
        row(
            "iss with a trailing space",
            set("iss", json!(format!("{iss} "))),
            "unknown_issuer",
        ),
        row("iss an array", set("iss", json!([iss])), "invalid_claim"),
        row("iss a number", set("iss", json!(1)), "invalid_claim"),
        row("aud missing", unset("aud"), "missing_claim"),
        row("aud an empty array", set("aud", json!([])), "missing_claim"),
        row(
            "aud wrong",
            set("aud", json!("https://vault.example")),
            "audience_mismatch",
        ),
        row(
            "aud with a trailing slash",
            set("aud", json!(format!("{AUD}/"))),
            "audience_mismatch",
        ),
        row(
            "aud differing by case",
            set("aud", json!(AUD.to_uppercase())),
            "audience_mismatch",
        ),
        row("aud a number", set("aud", json!(5)), "invalid_claim"),
        row(
            "aud an array of numbers",
            set("aud", json!([1, 2])),
            "invalid_claim",
        ),
        row(
            "aud an array mixing the trusted value and a number",
            set("aud", json!([AUD, 5])),
            "invalid_claim",
        ),
        row(
            "aud an object",
            set("aud", json!({"aud": AUD})),
            "invalid_claim",
        ),
        row("sub missing", unset("sub"), "missing_claim"),
        row("sub empty", set("sub", json!("")), "missing_claim"),
        row("sub a number", set("sub", json!(5)), "invalid_claim"),
        row(
            "sub an array",
            set("sub", json!([SUBJECT])),
            "invalid_claim",
        ),
        row(
            "sub differing by case",
            set("sub", json!(SUBJECT.to_uppercase())),
            "no_federated_credential",
        ),
        row(
            "sub with a trailing space",
            set("sub", json!(format!("{SUBJECT} "))),
            "no_federated_credential",
        ),
        row(
            "sub with a leading space",
            set("sub", json!(format!(" {SUBJECT}"))),
            "no_federated_credential",
        ),
        (
            "binding is for another service account".into(),
            SA_OTHER,
            sign(&good),
            400,
            "no_federated_credential",
        ),
        (
            "service account without any binding".into(),
            SA_UNBOUND,
            sign(&good),
            400,
            "no_federated_credential",
        ),
        row(
            "subject bound only to another service account",
            set("sub", json!(OTHER_SUBJECT)),
            "no_federated_credential",
        ),
        row(
            "disabled federation",
            set("iss", json!(format!("{iss}/disabled"))),
            "federation_disabled",
        ),
        (
            "unknown service account".into(),
            "ajesanonexistent01",
            sign(&good),
            400,
            "unknown_service_account",
        ),
        (
            "service account id differing by case".into(),
            "AJESA0000000000001",
            sign(&good),
            400,
            "unknown_service_account",
        ),
    ];
    run_table(&w.gateway, rows).await;
}

#[tokio::test]
async fn keys_a_jwks_must_not_offer_are_never_used() {
    let issuer = TestIssuer::start().await;
    let rsa = TestKey::generate(KeyKind::Rs256, "rsa-1");
    let enc = TestKey::generate(KeyKind::Es256, "enc");
    let mismatch = TestKey::generate(KeyKind::Es256, "mismatch");
    let dup_a = TestKey::generate(KeyKind::Es256, "dup");
    let dup_b = TestKey::generate(KeyKind::Es256, "dup");
    let secret = b"an-hmac-secret-of-32-bytes-long!";
    let mut enc_jwk = enc.public_jwk();
    enc_jwk["use"] = json!("enc");
    let mut mismatch_jwk = mismatch.public_jwk();
    mismatch_jwk["alg"] = json!("RS256");
    issuer.set_raw_jwks(Some(json!({"keys": [
        rsa.public_jwk(),
        {"kty": "oct", "kid": "hmac", "alg": "HS256", "use": "sig", "k": b64url(secret)},
        enc_jwk,
        mismatch_jwk,
        dup_a.public_jwk(),
        dup_b.public_jwk(),
        {"kty": "RSA", "kid": "short", "alg": "RS256", "use": "sig",
         "n": b64url(from_hex(RSA1024_N)), "e": "AQAB"},
    ]})));
    let gateway = Gateway::start(&crate::support::gateway::scenario(&issuer)).await;
    let good = claims(&issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let unknown =
        |name: &str, token: String| -> Row { (name.into(), SA, token, 400, "unknown_key") };
    let rows: Vec<Row> = vec![
        ("positive control".into(), SA, rsa.sign(&good), 200, ""),
        (
            "HS256 with the oct key's secret".into(),
            SA,
            Jwt::raw_payload(&json!({"alg": "HS256", "kid": "hmac"}), &payload)
                .sign_hmac("HS256", secret),
            400,
            "unsupported_algorithm",
        ),
        unknown(
            "RS256 naming the oct key",
            rsa.sign_raw(&json!({"alg": "RS256", "kid": "hmac"}), &payload),
        ),
        unknown("signed by the use:enc key", enc.sign(&good)),
        unknown(
            "signed by the use:enc key, no kid",
            enc.sign_raw(&json!({"alg": "ES256"}), &payload),
        ),
        unknown(
            "signed by the EC key whose alg says RS256",
            mismatch.sign(&good),
        ),
        unknown(
            "RS256 naming the EC key whose alg says RS256",
            rsa.sign_raw(&json!({"alg": "RS256", "kid": "mismatch"}), &payload),
        ),
        unknown(
            "signed by the first key of a duplicated kid",
            dup_a.sign(&good),
        ),
        unknown(
            "signed by the second key of a duplicated kid",
            dup_b.sign(&good),
        ),
        unknown(
            "signed by the 1024-bit RSA key",
            rsa1024_sign(
                &json!({"alg": "RS256", "typ": "JWT", "kid": "short"}),
                &payload,
            ),
        ),
        (
            "signed by the 1024-bit RSA key, no kid".into(),
            SA,
            rsa1024_sign(&json!({"alg": "RS256", "typ": "JWT"}), &payload),
            400,
            "bad_signature",
        ),
    ];
    run_table(&gateway, rows).await;
    let dup = gateway.post_form(&form_body(SA, &dup_a.sign(&good))).await;
    assert!(
        dup.description().contains("published more than once"),
        "{}",
        dup.text
    );
}

/// A header member set to `null` is still present: like `crit`, the key-locating and
/// payload-changing members are refused whatever their value.
#[tokio::test]
async fn null_valued_forbidden_headers_are_refused() {
    let w = world().await;
    let good = claims(&w.issuer.issuer(), SUBJECT, AUD);
    let payload = good.to_string().into_bytes();
    let mut rows: Vec<Row> = vec![("positive control".into(), SA, w.rsa.sign(&good), 200, "")];
    for name in ["jku", "jwk", "x5u", "x5c", "b64", "zip", "enc"] {
        let mut header = json!({"alg": "RS256", "kid": "rsa-1"});
        header[name] = Value::Null;
        rows.push((
            format!("{name} null"),
            SA,
            w.rsa.sign_raw(&header, &payload),
            400,
            "forbidden_header",
        ));
    }
    run_table(&w.gateway, rows).await;
}
