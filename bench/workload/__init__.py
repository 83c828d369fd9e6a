"""Benchmark workload: a real n-gram LM and lexicon built into CTC TLG graphs
of three sizes, synthetic CTC posteriors with references, and Kaldi baselines.

- :mod:`.sphinx_lm`: pocketsphinx's binary trie LM to a :class:`wfst.arpa.NgramModel`.
- :mod:`.lm`: cutting an LM down (most frequent words, most probable n-grams), consistently.
- :mod:`.sentences`: seeded sentences sampled from an LM, or of random words.
- :mod:`.posteriors`: synthetic CTC posteriors for sentences.
- :mod:`.build`: the cached workload (LMs, graphs, test sets) and the embedded example.
- :mod:`.kaldi_baseline`: Kaldi's CPU decoders on a workload.
- ``python -m bench.workload build|example``: the command line of :mod:`.build`.
"""
