"""``load_verified_lora`` and ``unload_lora``: the last step of the chain, where an adapter meets a pipeline.

Order (each step works on the one buffer read by ``source.py``; nothing re-reads a file):

1. read the adapter and its signature file once; get the revoked digests from a verified revocation list;
2. hash the buffer (all six digests, on several cores) and parse its safetensors header and scalars;
3. verify the signature file against those digests and facts, the trust store and the policy
   (``lorareg.signing.verify_bundle``: signature, trust, digest, revocation, licence/consent policy);
4. check compatibility with *this* pipeline: family (``family.py``) and every target module's shape
   (``structure.py``), and the stacking policy (``stacking.py``);
5. only if nothing failed: parse the tensors from the same buffer (``safetensors.torch.load``), hand the
   state dict to ``pipe.load_lora_weights`` and set the weights; a failure inside diffusers deletes the
   half-loaded adapter again. Three layouts diffusers cannot load take their own path, checked alike in
   step 4: kohya SD3 is converted first (``kohya_sd3.py``), Kandinsky 2.2 gets peft on its UNet
   (``component.py``), LyCORIS LoHa/LoKr is merged into the weights (``merge.py``).

Every reason found in steps 3-4 is reported together: ``VerificationError`` when any verification or
policy reason applies, else ``IncompatibleAdapterError``. Until step 5 the pipeline is not touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorareg.adapter.hashing import new_hasher
from lorareg.errors import IncompatibleAdapterError, InputError, NotFoundError, VerificationError
from lorareg.images.provenance import PIPE_ATTRIBUTE, AdapterUse, forget_adapter, record_adapter
from lorareg.loader import component as unet_peft
from lorareg.loader.family import PipelineFamily, detect_family
from lorareg.loader.kohya_sd3 import convert_kohya_sd3, is_kohya_sd3
from lorareg.loader.merge import MERGED_TYPES, merge_adapter, merge_reasons, merged_names, unmerge_adapter
from lorareg.loader.source import AdapterSource, open_adapter
from lorareg.loader.stacking import StackingWarning, stacking_problems
from lorareg.loader.structure import adapter_targets, check_structure

_ADAPTER_NAME = re.compile(r"[^A-Za-z0-9_\-]")  # peft adapter names become module-dict keys: no dots
_LORA_METADATA_KEY = "lora_adapter_metadata"  # diffusers' own alpha/rank metadata in the file header
_NAMED_KEYS = 3  # unrecognised key names quoted in a refusal before "(+N more)"


@dataclass(frozen=True, slots=True)
class _Checked:
    """What the checks established about one buffer: its record and any reasons to refuse."""

    use: AdapterUse
    verification: list[str]
    incompatibility: list[str]
    advice: list[str]
    lora_metadata: dict[str, Any] | None
    merge: bool = False  # LyCORIS LoHa/LoKr: merged by ``merge.py``, not loaded by diffusers


def load_verified_lora(
    pipe: Any,
    ref: str | os.PathLike[str],
    *,
    weight: float = 1.0,
    adapter_name: str | None = None,
    registry: Any | None = None,
    trust: Any | None = None,
    policy: Any | None = None,
    signature: str | os.PathLike[str] | None = None,
) -> AdapterUse:
    """Verify an adapter's exact bytes and its fit with ``pipe``, then load it; refuse otherwise.

    Args:
        pipe: a diffusers pipeline with LoRA support (``load_lora_weights``).
        ref: ``namespace/name@version`` (or ``namespace/name``) pulled from ``registry`` into the client
            cache, or a local path whose signature file is ``path + ".sig"`` (or ``signature``).
        weight: the adapter's weight (``set_adapters``).
        adapter_name: the diffusers adapter name; default from the manifest name (``acme_ink``).
        registry: a registry URL or ``lorareg.client.api_client.Client``: pulls refs and supplies the
        revocation list. trust: a ``TrustStore`` or the path of a trust file (default: the user's trust file).
        policy: a ``Policy``; default: the trust file's policy.
        signature: the signature file of a local path.

    Returns:
        The attribution record of the loaded adapter (also kept on ``pipe`` for :func:`attribution`).

    Raises:
        VerificationError: signature, trust, digest, revocation or policy (with every reason, and any
            incompatibility reasons too).
        IncompatibleAdapterError: family, missing modules, shapes (every reason).
        NotFoundError: no such file or reference.
    """
    trust_store, active_policy = _trust_and_policy(trust, policy)
    source = open_adapter(
        ref, registry=registry, signature=signature, trust=trust_store, policy=active_policy
    )
    checked = _check(
        pipe, source, weight=weight, adapter_name=adapter_name, trust=trust_store, policy=active_policy
    )
    if checked.verification:
        raise VerificationError(checked.verification + checked.incompatibility, subject=source.label)
    if checked.incompatibility:
        raise IncompatibleAdapterError(checked.incompatibility, subject=source.label)
    for advice in checked.advice:
        warnings.warn(f"{source.label}: {advice}", StackingWarning, stacklevel=2)
    if checked.merge:
        _merge(pipe, source.data, checked.use)
    else:
        _apply(pipe, source.data, checked.use, checked.lora_metadata)
    record_adapter(pipe, checked.use)
    return checked.use


def unload_lora(pipe: Any, name: str) -> None:
    """Remove adapter ``name`` from ``pipe`` (and from its attribution record); the others keep their weights.

    Raises:
        NotFoundError: the pipeline has no adapter of that name.
    """
    if name not in _loaded_names(pipe):
        raise NotFoundError(f"pipeline has no adapter named {name!r} (loaded: {sorted(_loaded_names(pipe))})")
    if name in merged_names(pipe):
        unmerge_adapter(pipe, name)
    elif unet_peft.handles(pipe):
        unet_peft.delete(pipe, name)
    else:
        pipe.delete_adapters(name)
    forget_adapter(pipe, name)
    _set_weights(pipe, None)


def _check(
    pipe: Any, source: AdapterSource, *, weight: float, adapter_name: str | None, trust: Any, policy: Any
) -> _Checked:
    from lorareg.adapter.facts import compute_facts
    from lorareg.adapter.safetensors import parse_header, read_scalars
    from lorareg.signing.verify import verify_bundle

    digests = _bound_digest(source)
    try:
        header = parse_header(source.data, file_size=len(source.data))
        scalars = read_scalars(source.data, header)
    except InputError as e:
        raise VerificationError([f"not a valid safetensors adapter: {e}"], subject=source.label) from e
    facts = compute_facts(header, scalars)
    verification: list[str] = []
    manifest: Any = None
    try:
        verified = verify_bundle(
            source.bundle,
            file_size=len(source.data),
            file_digests=digests,
            file_facts=facts,
            trust=trust,
            policy=policy,
            revoked=source.revoked,
        )
        manifest = verified.manifest
    except VerificationError as e:
        verification += e.reasons
    use = _use_record(source, digests, manifest, facts, weight=weight, adapter_name=adapter_name)
    incompatibility = _family_reasons(use, facts.family, detect_family(pipe), facts.alternatives)
    merge = facts.type in MERGED_TYPES
    incompatibility += (
        merge_reasons(pipe, header, scalars) if merge else _structure_reasons(pipe, header, scalars)
    )
    if use.adapter_name in _loaded_names(pipe):
        incompatibility.append(
            f"adapter name {use.adapter_name!r} is already loaded; unload it or pass adapter_name="
        )
    refusals, advice = stacking_problems(weights=[*_stack_weights(pipe), weight], policy=policy)
    metadata = _lora_metadata(header.metadata)
    return _Checked(use, verification + refusals, incompatibility, advice, metadata, merge)


def _bound_digest(source: AdapterSource) -> dict[str, str]:
    """The one digest that binds the buffer to its signature file (BLAKE3 when signed, on every core).

    The other digests attribution needs (SHA-256, AutoV3) are then read from the verified manifest, which
    that digest binds to these bytes; only a signature without a manifest makes the loader compute them.
    The verifier checks revocation against the signed SHA-256 as well, so that needs no second pass.
    """
    from lorareg.signing.filecheck import choose_digest

    algorithm = choose_digest(source.bundle)
    return {algorithm: _digest(source.data, algorithm)}


def _digest(data: bytes, algorithm: str) -> str:
    hasher = new_hasher(algorithm, all_cores=True)
    hasher.update(data)
    return hasher.hexdigest()


def _use_record(
    source: AdapterSource,
    digests: dict[str, str],
    manifest: Any,
    facts: Any,
    *,
    weight: float,
    adapter_name: str | None,
) -> AdapterUse:
    """The attribution record; manifest fields only from a verified manifest."""
    name = getattr(manifest, "name", None)
    version = getattr(manifest, "version", None)
    signed = _signed_digests(manifest) or _all_digests(source.data)
    default = name or os.path.splitext(os.path.basename(source.label))[0]
    declared = getattr(getattr(manifest, "base_model", None), "family", None)
    license_ = getattr(getattr(manifest, "license", None), "id", None)
    creators = tuple(str(getattr(c, "name", c)) for c in (getattr(manifest, "creators", None) or ()))
    return AdapterUse(
        adapter_name=adapter_name or _ADAPTER_NAME.sub("_", default),
        ref=f"{name}@{version}" if name and version else source.label,
        sha256=signed["sha256"],
        autov3=signed["autov3"],
        weight=float(weight),
        name=name,
        version=version,
        family=str(declared or facts.family),
        license=license_,
        creators=creators,
        digests={**signed, **digests},
    )


def _signed_digests(manifest: Any) -> dict[str, str]:
    digests = getattr(manifest, "digests", None)
    if digests is None:
        return {}
    names = ("sha256", "autov3", "blake3", "autov1", "autov2", "crc32")
    return {n: v for n in names if isinstance(v := getattr(digests, n, None), str)}


def _all_digests(data: bytes) -> dict[str, str]:
    """Every digest, computed: for a signature without a manifest, or a refused file's messages."""
    from lorareg.adapter.hashing import StreamHasher

    hasher = StreamHasher()
    hasher.update(data)
    return {k: v for k, v in hasher.finish().to_json().items() if v}


def _family_reasons(
    use: AdapterUse, fact_family: str, pipeline: PipelineFamily, alternatives: tuple[str, ...] = ()
) -> list[str]:
    """The adapter's declared (signed) family and the family its tensors show must both fit the pipeline.

    Where the tensors cannot tell two families apart (``alternatives``: FLUX.1 vs FLUX.2 klein-4B
    attention), a pipeline of the other family is not refused by name: the structural check decides.
    """
    if pipeline.family == "unknown":
        return []  # nothing to compare; the structural check still decides
    if pipeline.family in alternatives and use.family in (fact_family, pipeline.family):
        return []
    claimed = {f for f in (use.family, fact_family) if f and f != "unknown"}
    return [
        f"{use.ref} targets {family}; this pipeline is {pipeline.describe()}"
        for family in sorted(claimed)
        if family != pipeline.family
    ]


def _structure_reasons(pipe: Any, header: Any, scalars: dict[str, float]) -> list[str]:
    try:
        targets = adapter_targets(pipe, header, scalars)
    except Exception as e:  # diffusers' converters raise anything from KeyError to ValueError on odd keys
        detail = str(e) or "(no message: an assertion inside diffusers' converter)"
        return [
            f"diffusers cannot map the adapter's keys for {type(pipe).__name__}: {type(e).__name__}: {detail}"
        ]
    if not targets and header.tensors:
        return [_nothing_loadable(pipe, header)]
    return check_structure(pipe, targets)


def _nothing_loadable(pipe: Any, header: Any) -> str:
    """diffusers drops keys no converter of this pipeline knows (a log line, no error): say so, and which."""
    names = sorted({name.split(".", 1)[0] for name in header.tensors})
    shown = ", ".join(names[:_NAMED_KEYS]) + (
        f" (+{len(names) - _NAMED_KEYS} more)" if len(names) > _NAMED_KEYS else ""
    )
    return (
        f"diffusers would load none of this adapter into {type(pipe).__name__}: no converter of that "
        f"pipeline recognises its keys ({shown})"
    )


def _lora_metadata(metadata: dict[str, str]) -> dict[str, Any] | None:
    """diffusers' ``lora_adapter_metadata`` (alphas, ranks), which a state-dict load would otherwise lose."""
    raw = metadata.get(_LORA_METADATA_KEY)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _apply(pipe: Any, data: bytes, use: AdapterUse, lora_metadata: dict[str, Any] | None) -> None:
    """Parse the verified buffer and load it; undo a half-done load if diffusers fails."""
    from safetensors.torch import load

    state = load(data)
    if is_kohya_sd3(pipe, state):
        state = convert_kohya_sd3(pipe, state)  # checked by the structural check, which converted alike
    try:
        if unet_peft.handles(pipe):
            unet_peft.load(pipe, state, name=use.adapter_name)
        else:
            with _file_metadata(pipe, lora_metadata):
                pipe.load_lora_weights(state, adapter_name=use.adapter_name)
        _set_weights(pipe, use)
    except Exception as e:  # anything diffusers/peft raise: report it as ours, after cleaning up
        with contextlib.suppress(Exception):
            (unet_peft.delete if unet_peft.handles(pipe) else type(pipe).delete_adapters)(
                pipe, use.adapter_name
            )
        raise IncompatibleAdapterError(
            [f"diffusers failed to load the adapter: {type(e).__name__}: {e}"]
        ) from e


@contextlib.contextmanager
def _file_metadata(pipe: Any, lora_metadata: dict[str, Any] | None) -> Iterator[None]:
    """Give diffusers the file's LoRA metadata, as it has when it loads a path instead of a state dict.

    ``load_lora_weights(dict)`` drops ``lora_adapter_metadata`` (the peft ``lora_alpha``), so an adapter
    with alpha != rank would load at another scale than ``load_lora_weights(path)``. For the duration of
    the call the pipeline instance's ``lora_state_dict`` returns that metadata in place of ``None``.
    """
    if lora_metadata is None:
        yield
        return
    original = type(pipe).lora_state_dict

    def with_metadata(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if kwargs.get("return_lora_metadata") and isinstance(result, tuple) and result[-1] is None:
            return (*result[:-1], lora_metadata)
        return result

    pipe.lora_state_dict = with_metadata
    try:
        yield
    finally:
        del pipe.lora_state_dict


def _merge(pipe: Any, data: bytes, use: AdapterUse) -> None:
    """Parse the verified buffer and merge its ΔW (LyCORIS); a failure leaves the weights as they were."""
    from safetensors.torch import load

    try:
        merge_adapter(pipe, use.adapter_name, load(data), weight=use.weight)
    except Exception as e:  # merge_adapter restored the weights before re-raising
        raise IncompatibleAdapterError([f"merging the adapter failed: {type(e).__name__}: {e}"]) from e


def _loaded_names(pipe: Any) -> set[str]:
    return _peft_names(pipe) | set(merged_names(pipe))


def _peft_names(pipe: Any) -> set[str]:
    """Adapters diffusers/peft hold (``set_adapters`` reaches these; merged ones it does not)."""
    getter = getattr(pipe, "get_list_adapters", None)
    if getter is None:
        return unet_peft.names(pipe) if unet_peft.handles(pipe) else set()
    return {name for names in getter().values() for name in names}


def _stack_weights(pipe: Any) -> list[float]:
    """The weights of the adapters already on ``pipe`` (1.0 for those lorareg did not load)."""
    records: dict[str, AdapterUse] = getattr(pipe, PIPE_ATTRIBUTE, {})
    return [records[n].weight if n in records else 1.0 for n in sorted(_loaded_names(pipe))]


def _set_weights(pipe: Any, new: AdapterUse | None) -> None:
    """Activate every loaded adapter with its recorded weight (1.0 for adapters lorareg did not load)."""
    records: dict[str, AdapterUse] = getattr(pipe, PIPE_ATTRIBUTE, {})
    names = sorted(_peft_names(pipe))
    if not names:
        return
    if new is not None and names == [new.adapter_name] and new.weight == 1.0:
        return  # diffusers already made the one adapter active at weight 1.0; set_adapters would redo it
    weights = [
        new.weight if new and n == new.adapter_name else records[n].weight if n in records else 1.0
        for n in names
    ]
    if unet_peft.handles(pipe):
        unet_peft.set_weights(pipe, names, weights)
    else:
        pipe.set_adapters(names, adapter_weights=weights)


def _trust_and_policy(trust: Any | None, policy: Any | None) -> tuple[Any, Any]:
    """The trust store (loaded from a path or the default file) and the policy to apply."""
    from lorareg.signing.trust import load_trust

    if trust is None or isinstance(trust, str | os.PathLike):
        store = load_trust(None if trust is None else Path(trust))
    else:
        store = trust
    return store, policy if policy is not None else store.policy
