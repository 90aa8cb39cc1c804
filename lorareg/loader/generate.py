"""Run a pipeline and keep what A1111 attribution needs that the pipeline forgets: the seed and the call.

``save_image`` fills steps, sampler, CFG scale, size and model from the pipeline; the seed only the caller
knows. :func:`generate` seeds a ``torch.Generator``, runs the pipeline once and returns the first image with
the settings to pass on (``save_image(image, path, pipe, prompt=prompt, **settings)``). Nothing else.
"""

from __future__ import annotations

from typing import Any

_PASSED_ON = {
    "num_inference_steps": "steps",
    "guidance_scale": "cfg_scale",
    "negative_prompt": "negative_prompt",
}


def generate(pipe: Any, prompt: str, *, seed: int, **kwargs: Any) -> tuple[Any, dict[str, object]]:
    """Run ``pipe(prompt, generator=<seeded>, **kwargs)``; return ``(first image, settings for save_image)``.

    Args:
        pipe: a diffusers text-to-image pipeline.
        prompt: the prompt.
        seed: the generator seed (recorded as ``Seed``).
        **kwargs: passed to the pipeline; ``num_inference_steps``, ``guidance_scale`` and
            ``negative_prompt`` are recorded too.
    """
    import torch

    device = getattr(pipe, "device", None)
    generator = torch.Generator(device="cpu" if device is None else str(device)).manual_seed(seed)
    image = pipe(prompt, generator=generator, **kwargs).images[0]
    settings: dict[str, object] = {"seed": seed}
    settings.update({name: kwargs[key] for key, name in _PASSED_ON.items() if kwargs.get(key) is not None})
    return image, settings
