"""Layer IDG on Hugging Face models built from configs (no download): BERT sequence
classification with an attention mask, and GPT-2 under Captum's LLMGradientAttribution."""

import pytest
import torch
from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

from captum_idg import LayerIntegratedDecisionGradients
from tests.language_model import WORDS, WordTokenizer
from tests.oracles import oracle

transformers = oracle("transformers")


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=16, num_labels=2)
    return transformers.BertForSequenceClassification(config).double().eval()


def test_layer_idg_on_bert_embeddings_sums_as_layer_ig_with_a_mask(bert):
    def forward(ids, mask):
        return bert(ids, attention_mask=mask).logits

    ids = torch.randint(5, 30, (2, 8), generator=torch.Generator().manual_seed(1))
    ids[:, 0] = 2  # [CLS]
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padding the model must not see
    refs = torch.where(torch.arange(8) == 0, 2, 0).expand(2, 8)  # [CLS] then [PAD]
    ours, delta = LayerIntegratedDecisionGradients(forward, bert.bert.embeddings).attribute(
        ids, baselines=refs, target=1, additional_forward_args=(mask,), n_steps=32,
        return_convergence_delta=True)
    theirs = LayerIntegratedGradients(forward, bert.bert.embeddings).attribute(
        ids, baselines=refs, target=1, additional_forward_args=(mask,), n_steps=500)
    with torch.no_grad():
        change = forward(ids, mask)[:, 1] - forward(refs, mask)[:, 1]
    per_token = ours.sum(-1)
    # rescaled by default: the tokens sum to F(x) - F(x'), as LayerIG's (nearly) do
    torch.testing.assert_close(per_token.sum(1), change, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(theirs.sum((1, 2)), change, rtol=1e-3, atol=1e-4)
    assert torch.nn.functional.cosine_similarity(per_token, theirs.sum(-1)).min() > 0.7
    assert delta.shape == (2,)


def test_several_reference_sequences_through_bert(bert):
    def forward(ids):
        return bert(ids).logits

    ids = torch.randint(5, 30, (2, 6), generator=torch.Generator().manual_seed(2))
    refs = torch.randint(5, 30, (2, 3, 6), generator=torch.Generator().manual_seed(3))
    layer = LayerIntegratedDecisionGradients(forward, bert.bert.embeddings)
    got = layer.attribute(ids, baselines=refs, target=0, n_steps=16)
    loop = torch.stack([layer.attribute(ids, baselines=refs[:, k], target=0, n_steps=16)
                        for k in range(3)]).mean(0)
    torch.testing.assert_close(got, loop, rtol=0, atol=1e-10)


def test_gpt2_under_llm_gradient_attribution():
    torch.manual_seed(4)
    config = transformers.GPT2Config(vocab_size=len(WORDS), n_positions=16, n_embd=32,
                                     n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config).double().eval()
    tokenizer = WordTokenizer()
    prompt = TextTokenInput("the cat sat on", tokenizer)
    theirs = LLMGradientAttribution(LayerIntegratedGradients(model, model.transformer.wte),
                                    tokenizer).attribute(prompt, target="the mat", n_steps=300)
    ours = LLMGradientAttribution(LayerIntegratedDecisionGradients(model, model.transformer.wte),
                                  tokenizer).attribute(prompt, target="the mat", n_steps=48)
    assert ours.token_attr.shape == theirs.token_attr.shape == (2, 5)
    # per generated token, the change of its log-probability, as LayerIG's sums
    torch.testing.assert_close(ours.token_attr.sum(1), theirs.token_attr.sum(1),
                               rtol=1e-3, atol=1e-4)
