"""NVIDIA's riva-asrlib-decoder (Kaldi's batched CUDA decoder, cudadecoder,
behind a Python binding) over the same utterances as ours: the GPU baseline of
``bench.gpu_decoder``, when its wheel and torch import (a GPU machine).

Its decoder reads the same TLG.fst and words.txt, and, like Kaldi's
DecodableCtc, score column ``i - 1`` for input label ``i``. It takes one padded
float32 batch on the GPU (utterances x frames x columns) with the acoustic scale
applied to the scores (its own stays 1), decodes up to ``max_batch_size``
utterances at once over as many channels, and here returns the best path of
each lattice (``decode_nbest``, n = 1; its lattices are determinized, as
Kaldi's pipeline does). The batch is uploaded before the clock starts (ours
reads host memory inside its time), so the comparison favours riva slightly.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

TOKENS_PRE_ALLOCATED = 10_000_000
"""riva's token store for lattices (its test suite's value)."""


def riva_decoder(graph_dir: Path, num_columns: int, config, lanes: int, threads: int):
    """riva's BatchedMappedDecoderCuda for ``lanes`` utterances at once, set as
    ``config`` (a wfst.DecoderConfig: beam, max_active, lattice_beam); raises
    ImportError without the wheel or torch."""
    import torch  # noqa: F401  (riva's binding takes torch tensors)
    from riva.asrlib.decoder.python_decoder import BatchedMappedDecoderCuda, BatchedMappedDecoderCudaConfig

    c = BatchedMappedDecoderCudaConfig()
    c.n_input_per_chunk = 50
    c.online_opts.decoder_opts.default_beam = config.beam
    c.online_opts.decoder_opts.lattice_beam = config.lattice_beam
    c.online_opts.decoder_opts.max_active = config.max_active
    c.online_opts.decoder_opts.ntokens_pre_allocated = TOKENS_PRE_ALLOCATED
    c.online_opts.decoder_opts.blank_penalty = 0.0
    c.online_opts.decoder_opts.length_penalty = 0.0
    c.online_opts.determinize_lattice = True
    c.online_opts.max_batch_size = lanes
    c.online_opts.num_channels = lanes
    c.online_opts.frame_shift_seconds = 0.04
    c.online_opts.lattice_postprocessor_opts.acoustic_scale = 1.0
    c.online_opts.lattice_postprocessor_opts.lm_scale = 1.0
    c.online_opts.lattice_postprocessor_opts.word_ins_penalty = 0.0
    c.online_opts.lattice_postprocessor_opts.nbest = 1
    c.online_opts.num_decoder_copy_threads = 2
    c.online_opts.num_post_processing_worker_threads = max(1, threads - 2)
    return BatchedMappedDecoderCuda(c, str(graph_dir / "TLG.fst"), str(graph_dir / "words.txt"), num_columns)


def padded_batches(rows: list[np.ndarray], acoustic_scale: float, size: int) -> list[tuple]:
    """``rows`` in batches of ``size``: (scores on the GPU, utterances x frames x
    columns, scaled; lengths, int64 on the host), as riva's binding takes them."""
    import torch

    batches = []
    for first in range(0, len(rows), size):
        chunk = rows[first:first + size]
        lengths = np.array([r.shape[0] for r in chunk], np.int64)
        padded = np.zeros((len(chunk), int(lengths.max()), chunk[0].shape[1]), np.float32)
        for i, r in enumerate(chunk):
            padded[i, :r.shape[0]] = r * np.float32(acoustic_scale)
        batches.append((torch.from_numpy(padded).cuda(), torch.from_numpy(lengths)))
    return batches


def decode_riva(decoder, batches: list[tuple]) -> tuple[float, list[tuple[int, ...]]]:
    """Decode every batch; (seconds, the best path's words of each utterance)."""
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    results = []
    for scores, lengths in batches:
        results.extend(decoder.decode_nbest(scores, lengths))
    seconds = time.perf_counter() - start
    return seconds, [tuple(int(w) for w in nbest[0].words) for nbest in results]


def riva_run(graph_dir: Path, num_columns: int, config, lanes: int, threads: int, batch: list[np.ndarray],
             reference_words: list[tuple[int, ...]], audio_seconds: float) -> dict:
    """riva over ``batch`` on ``lanes`` channels: seconds, RTFx and how many of
    the first ``len(reference_words)`` best paths have the reference's words
    (our CPU backend's); ``{"error": ...}`` when riva cannot run here."""
    try:
        decoder = riva_decoder(graph_dir, num_columns, config, lanes, threads)
        batches = padded_batches(batch, config.acoustic_scale, lanes)
        decode_riva(decoder, batches[:1])  # warm-up
        seconds, words = decode_riva(decoder, batches)
    except Exception as error:  # (no wheel, no torch, no GPU, or riva refused: the run goes on without it)
        return {"error": f"{type(error).__name__}: {error}"}
    return {"seconds": seconds, "rtfx": audio_seconds / seconds,
            "identical_words_to_cpu": sum(a == b for a, b in zip(words, reference_words))}
