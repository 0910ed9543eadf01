"""torch + diffusers: tokenizer, model loading, pipeline and the generation worker thread.

Never imports discord or storage. torch and diffusers are imported lazily by the modules that need them.
"""
