use super::*;
use crate::identity::SigningKey;
use crate::record::{ChainPosition, NewRecord, sign_record};

fn vector() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../tests/vectors/hpke-rfc9180-a2.json")).unwrap()
}

fn hex_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap()).unwrap()
}

/// Hands out the RFC's `ikmE` as the ephemeral key's randomness, so the
/// seal is the RFC's, byte for byte.
struct Fixed(Vec<u8>);

impl hpke::rand_core::TryRng for Fixed {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("only fill_bytes is used for key generation")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("only fill_bytes is used for key generation")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let n = dst.len();
        dst.copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for Fixed {}

#[test]
fn our_suite_reproduces_rfc_9180_appendix_a_2_1() {
    let v = vector();
    let pk_r: [u8; 32] = hex_field(&v, "pkRm").try_into().unwrap();
    let (enc, ct) = seal_raw(
        &pk_r,
        &hex_field(&v, "info"),
        &hex_field(&v, "aad"),
        &hex_field(&v, "pt"),
        &mut Fixed(hex_field(&v, "ikmE")),
    )
    .unwrap();
    assert_eq!(enc, hex_field(&v, "enc"));
    assert_eq!(ct, hex_field(&v, "ct"));

    let org = OrgSecretKey::from_bytes(&hex_field(&v, "skRm")).unwrap();
    assert_eq!(org.public_key().as_bytes(), &pk_r, "skRm gives pkRm");
    let opened = open_raw(
        &org.sk,
        &enc,
        &hex_field(&v, "info"),
        &hex_field(&v, "aad"),
        &ct,
    )
    .unwrap();
    assert_eq!(opened.as_slice(), hex_field(&v, "pt"));
    let mut bad = ct.clone();
    bad[3] ^= 1;
    assert_eq!(
        open_raw(
            &org.sk,
            &enc,
            &hex_field(&v, "info"),
            &hex_field(&v, "aad"),
            &bad
        ),
        Err(SealError::Tampered)
    );
}

fn signed() -> (ChainPosition, Envelope) {
    let device = SigningKey::generate().unwrap();
    let pos = ChainPosition::first(&device);
    let new = NewRecord::builder("S1", "incident", 1, "incident")
        .payload_json(r#"{"note": "SEALED-MARKER"}"#)
        .build()
        .unwrap();
    let env = sign_record(&new, &pos, &device).unwrap();
    (pos, env)
}

#[test]
fn a_sealed_record_opens_only_for_its_organisation_and_its_label() {
    let org = OrgSecretKey::generate();
    let (pos, env) = signed();
    let sealed = SealedRecord::seal(&org.public_key(), &pos.device, pos.seq, &env).unwrap();
    assert!(!sealed.ct.windows(13).any(|w| w == b"SEALED-MARKER"));
    assert_eq!(sealed.open(&org).unwrap(), env);

    let other = OrgSecretKey::generate();
    assert_eq!(sealed.open(&other), Err(SealError::Tampered));
    for i in [0, sealed.ct.len() / 2, sealed.ct.len() - 1] {
        let mut bad = sealed.clone();
        bad.ct[i] ^= 0x01;
        assert_eq!(
            bad.open(&org),
            Err(SealError::Tampered),
            "ciphertext byte {i}"
        );
    }
    let mut bad = sealed.clone();
    bad.enc[0] ^= 0x01;
    assert_eq!(bad.open(&org), Err(SealError::Tampered), "encapsulated key");
    let mut moved = sealed.clone();
    moved.seq += 1;
    assert_eq!(moved.open(&org), Err(SealError::Tampered), "relabelled seq");
    let mut moved = sealed.clone();
    moved.device = SigningKey::generate().unwrap().public_key().device_id();
    assert_eq!(
        moved.open(&org),
        Err(SealError::Tampered),
        "relabelled device"
    );
}

#[test]
fn keys_round_trip_and_bad_keys_are_refused() {
    let org = OrgSecretKey::generate();
    let again = OrgSecretKey::from_bytes(&org.to_bytes()).unwrap();
    assert_eq!(again.public_key(), org.public_key());
    let text = serde_json::to_string(&org.public_key()).unwrap();
    let back: OrgPublicKey = serde_json::from_str(&text).unwrap();
    assert_eq!(back, org.public_key());
    assert!(OrgPublicKey::from_bytes(&[1; 31]).is_err());
    assert!(serde_json::from_str::<OrgPublicKey>("\"zz\"").is_err());
    assert!(OrgSecretKey::from_bytes(&[1; 5]).is_err());
}

#[test]
fn a_sealed_secret_opens_only_with_its_key_and_context() {
    let org = OrgSecretKey::generate();
    let other = OrgSecretKey::generate();
    let sealed = seal_secret(&org.public_key(), b"ctx-a", b"twenty bytes of key!").unwrap();
    assert_eq!(
        &open_secret(&org, b"ctx-a", &sealed).unwrap()[..],
        b"twenty bytes of key!"
    );
    assert_eq!(
        open_secret(&org, b"ctx-b", &sealed),
        Err(SealError::Tampered)
    );
    assert_eq!(
        open_secret(&other, b"ctx-a", &sealed),
        Err(SealError::Tampered)
    );
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(
        open_secret(&org, b"ctx-a", &flipped),
        Err(SealError::Tampered)
    );
    assert_eq!(
        open_secret(&org, b"ctx-a", &sealed[..20]),
        Err(SealError::Tampered)
    );
    assert!(seal_secret(&org.public_key(), b"", &[0; MAX_SECRET_BYTES + 1]).is_err());
}
