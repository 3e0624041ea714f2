"""A decoder with Llama-2-70B's dimensions, built from a transformers LlamaConfig.

    reslint "benchmarks/targets/llama70b.py:llama70b()" --input 1,128:int64

reslint builds it under torch.device("meta"), so its ~69B parameters take no memory. Built anywhere
else (`llama70b()` on CPU) it needs ~280 GB in float32.
"""

from transformers import LlamaConfig, LlamaModel

LLAMA2_70B = dict(
    hidden_size=8192,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    intermediate_size=28672,
    vocab_size=32000,
)


def config(**overrides) -> LlamaConfig:
    return LlamaConfig(**{**LLAMA2_70B, **overrides})


def llama70b(**overrides) -> LlamaModel:
    """LlamaModel (the decoder stack, no LM head) with Llama-2-70B's dimensions."""
    return LlamaModel(config(**overrides))
