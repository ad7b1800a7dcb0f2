"""Amazon SNS message signatures, made with a test key the harness serves and documents.

SNS signs the listed fields of each message it posts, in order, as ``name\\nvalue\\n`` (a field
without a value left out): SignatureVersion 1 is RSA PKCS#1 v1.5 over SHA1, version 2 over
SHA256; the signature is base64, and ``SigningCertURL`` names the PEM certificate whose key
checks it. (AWS SNS DG, "Verifying the signatures of Amazon SNS messages": documented.)

The fake signs with a key made for the process (never committed) in a self-signed certificate
served over HTTPS at the SigningCertURL (see `endpoint`). :func:`verify` is the check an
application makes, for tests.
"""

from __future__ import annotations

import base64
import datetime
import functools
from collections.abc import Mapping
from typing import Any

# cryptography is imported where a key is made or a signature checked: it costs a server about
# 9 MiB, and most servers never sign (tests/test_server_memory.py holds that).

#: The fields signed, in order, by message type (AWS SNS DG: documented).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
#: The SignatureVersions and the hash each signs with.
_HASHES = {"1": "SHA1", "2": "SHA256"}


def _hash(version: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return getattr(hashes, _HASHES[version])()


class SigningKey:
    """An RSA key and its self-signed certificate (CN sns.amazonaws.com), made once a process."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: Mapping[str, Any], version: str) -> str:
        """The base64 signature of `message` for SignatureVersion `version` ("1" or "2")."""
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(string_to_sign(message), padding.PKCS1v15(), _hash(version))
        return base64.b64encode(signature).decode("ascii")


@functools.cache
def signing_key() -> SigningKey:
    """The process's signing key: generating one costs tens of milliseconds."""
    return SigningKey()


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """What SNS signs of `message`: its type's fields with a value, ``name\\nvalue\\n`` each."""
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise ValueError(f"not an SNS message type: {message.get('Type')!r}")
    return "".join(f"{k}\n{message[k]}\n" for k in fields if message.get(k)).encode()


def verify(message: Mapping[str, Any], certificate_pem: bytes) -> bool:
    """True when `message` (an SNS HTTP body, parsed) carries a good signature by the key of
    `certificate_pem`, in its SignatureVersion (1: SHA1, 2: SHA256). Exported as
    ``harness.verify_sns_message``.
    """
    version = str(message.get("SignatureVersion", ""))
    if version not in _HASHES or not message.get("Signature"):
        return False
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        signature = base64.b64decode(str(message["Signature"]), validate=True)
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), _hash(version))
    except (InvalidSignature, ValueError):
        return False
    return True


#: The public name (``harness.verify_sns_message``).
verify_sns_message = verify
