"""The enclaves this SDK trusts, and the check of a server's enclave
against them.

Before a dataset key leaves this machine it is sealed to the enclave's
public key, so the client first checks the enclave's attestation document
(``GET /api/v1/enclave``) against :func:`latest`:

- the HPKE suite must be the one this SDK implements, else nothing is
  sealed to the key;
- the platform must be one the specifications accept. On the ``software``
  platform (the embedded default) the enclave runs inside the server
  process and nothing but the operator vouches for its key; the client
  says so once with an :class:`EnclaveSoftwareWarning`.

The server lists the worker images computations run on at
``GET /api/v1/enclave/specs``, each with its measurement (over the image's
exact packages, the sandbox policy and the server's binaries;
``cleanroom specs`` shows them on the server's machine). With
:attr:`EnclaveSpecifications.workers` set, the client also refuses a
server that runs any worker whose name and measurement are not pinned
there: any of them may run the computations that read the dataset. Empty
(the default), workers are not checked.
"""

from __future__ import annotations

import base64
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, Tuple

from . import crypto
from .errors import EnclaveNotTrusted

SOFTWARE_PLATFORM = "software"


class EnclaveSoftwareWarning(UserWarning):
    """The enclave runs in software: only the server's operator vouches
    for its key, so the operator could read the datasets sealed to it."""


@dataclass(frozen=True)
class WorkerSpec:
    """One worker image computations may run on: its name, its measurement
    (SHA-256 over its exact packages, sandbox policy and binary), and the
    Python and library versions it offers."""

    name: str
    measurement: str
    python_version: str = ""
    libraries: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "WorkerSpec":
        """Parse one worker of ``GET /api/v1/enclave/specs``."""
        try:
            return cls(name=str(doc["name"]), measurement=str(doc["measurement"]),
                       python_version=str(doc.get("python_version", "")), libraries=dict(doc.get("libraries") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise EnclaveNotTrusted(f"the server's worker specs are malformed ({e!r})") from None


@dataclass(frozen=True)
class Attestation:
    """The enclave's attestation document as the server sent it."""

    platform: str
    public_key: bytes
    hpke_suite: Tuple[int, int, int]

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Attestation":
        """Parse the JSON of ``GET /api/v1/enclave``."""
        try:
            key = base64.b64decode(doc["public_key"], validate=True)
            suite = (int(doc["hpke_kem"]), int(doc["hpke_kdf"]), int(doc["hpke_aead"]))
            platform = str(doc["platform"])
        except (KeyError, TypeError, ValueError) as e:
            raise EnclaveNotTrusted(f"the server's enclave attestation is malformed ({e!r})") from None
        return cls(platform=platform, public_key=key, hpke_suite=suite)


@dataclass(frozen=True)
class EnclaveSpecifications:
    """What a client accepts from an enclave.

    ``hpke_suite`` is the (KEM, KDF, AEAD) ids of RFC 9180 that dataset
    keys are sealed with; ``platforms`` the attestation platforms accepted;
    ``workers`` the worker images trusted to run computations (empty: not
    yet checked, see the module documentation).
    """

    hpke_suite: Tuple[int, int, int] = crypto.HPKE_SUITE
    platforms: Tuple[str, ...] = (SOFTWARE_PLATFORM,)
    workers: Tuple[WorkerSpec, ...] = ()

    def check(self, attestation: Attestation, server: str = "the server") -> None:
        """Refuse an enclave these specifications do not accept, and warn
        (once per call site and server) when it runs in software."""
        if attestation.hpke_suite != self.hpke_suite:
            raise EnclaveNotTrusted(
                f"the enclave of {server} uses HPKE suite {_suite(attestation.hpke_suite)}, "
                f"but this SDK seals keys only with {_suite(self.hpke_suite)}; no key was sent")
        if len(attestation.public_key) != 32:
            raise EnclaveNotTrusted(f"the enclave of {server} sent a {len(attestation.public_key)}-byte public key; X25519 keys are 32 bytes")
        if attestation.platform not in self.platforms:
            raise EnclaveNotTrusted(
                f"the enclave of {server} runs on platform {attestation.platform!r}, "
                f"which these enclave specifications do not accept ({', '.join(self.platforms)})")
        if attestation.platform == SOFTWARE_PLATFORM:
            warnings.warn(
                f"the enclave of {server} runs in software mode: nothing but the server's operator "
                "vouches for its key, so the operator could decrypt the datasets published to it",
                EnclaveSoftwareWarning, stacklevel=_caller_outside_package())


    def check_workers(self, served: Sequence[WorkerSpec], server: str = "the server") -> None:
        """Refuse a server that runs a worker these specifications do not
        pin, by name and measurement; with no workers pinned, accept any."""
        if not self.workers:
            return
        pinned = {(w.name, w.measurement) for w in self.workers}
        if not served:
            raise EnclaveNotTrusted(f"{server} lists no workers, so none can be checked against the pinned ones; no key was sent")
        for w in served:
            if (w.name, w.measurement) not in pinned:
                raise EnclaveNotTrusted(
                    f"{server} runs worker {w.name!r} with measurement {w.measurement}, which these enclave "
                    "specifications do not pin; no key was sent. If the server was updated, check its new "
                    "workers (`cleanroom specs` on its machine) and pin them")


def _caller_outside_package() -> int:
    """The warnings stack level of the first caller outside this package,
    so a warning points at the user's line, not at the SDK's."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame, level = frame.f_back, level + 1
    return level


def _suite(s: Tuple[int, int, int]) -> str:
    return "KEM 0x%04x, KDF 0x%04x, AEAD 0x%04x" % s


_LATEST = EnclaveSpecifications()


def latest() -> EnclaveSpecifications:
    """The enclave specifications this version of the SDK trusts."""
    return _LATEST

