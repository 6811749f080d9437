//! The crypto of one token exchange and nothing else: one RS256 verification of a caller token
//! (key parsed once, as the gateway keeps issuers' keys) and one ES256 signature of an access
//! token's signing input (the default signing algorithm). No parsing, no JSON.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, ParsedPublicKey};
use wif_gateway::testkit::{Jwt, KeyKind, TestKey};

/// The keys and inputs of the operation, made once.
pub struct CryptoFloor {
    rng: SystemRandom,
    caller_input: String,
    caller_sig: Vec<u8>,
    verifier: ParsedPublicKey,
    at_input: String,
    signer: EcdsaKeyPair,
}

impl CryptoFloor {
    pub fn new() -> anyhow::Result<CryptoFloor> {
        let rng = SystemRandom::new();
        // A caller token like the load's: RS256 over a realistic header and claims.
        let caller = TestKey::generate(KeyKind::Rs256, "loadgen-caller-key");
        let caller_input = Jwt::raw(
            br#"{"alg":"RS256","typ":"JWT","kid":"loadgen-caller-key"}"#,
            br#"{"iss":"http://127.0.0.1:18081","sub":"repo:loadtest/app-000123:ref:refs/heads/main","aud":"wif-loadtest","iat":1795386292,"nbf":1795386292,"exp":1795393492,"jti":"0123456789abcdef-0000000123"}"#,
        )
        .signing_input()
        .to_owned();
        let caller_sig = caller.signature(caller_input.as_bytes());
        let verifier = caller.verifier();
        // The gateway's ES256 signing key and an access token's signing input.
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("EC key generation failed"))?;
        let signer =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|e| anyhow::anyhow!("EC key: {e}"))?;
        let at_input = Jwt::raw(
            br#"{"alg":"ES256","typ":"at+jwt","kid":"xAuWPUvzr32f9Eaihu2tQToumP4vRhaVCH2dYAWaXuA"}"#,
            br#"{"iss":"http://127.0.0.1:18080","sub":"aje0loadsa0000000001","aud":"http://127.0.0.1:18080","iat":1795386292,"nbf":1795386292,"exp":1795389892,"jti":"7WNwZLy6MqKf-X3VMtSYUA","client_id":"aje0loadfed000000001","act":{"iss":"http://127.0.0.1:18081","sub":"repo:loadtest/app-000123:ref:refs/heads/main"}}"#,
        )
        .signing_input()
        .to_owned();
        Ok(CryptoFloor {
            rng,
            caller_input,
            caller_sig,
            verifier,
            at_input,
            signer,
        })
    }

    /// One RS256 verification and one ES256 signature; the signature's length.
    pub fn once(&self) -> anyhow::Result<usize> {
        self.verifier
            .verify_sig(self.caller_input.as_bytes(), &self.caller_sig)
            .map_err(|_| anyhow::anyhow!("RS256 verification failed"))?;
        let sig = self
            .signer
            .sign(&self.rng, self.at_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("ES256 signing failed"))?;
        Ok(sig.as_ref().len())
    }
}
