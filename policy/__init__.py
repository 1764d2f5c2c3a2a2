"""The content policy: what may be sent to a provider and published.

* policy.engine: the fixed rules and the configured categories over a normalised text
  (``evaluate``, ``check_prompt``); its docstring is the policy's design;
* policy.gate: the one judgement of a provider request (``judge``: every text part, the
  LoRA / model names, the reference image, the optional moderation layer);
* policy.lexicon, policy.categories, policy.normalise: the words and their readings;
* policy.moderation: OpenAI's moderation endpoint as a second layer;
* policy.templates: every expansion of every template judged by ``templates validate``;
* policy.config: the configuration of the categories and the moderation layer.
"""
