"""The most tokens a prompt may have where a clip's layout follows its length, and how to say so.

An engine takes the `--max-tokens` it was built for; the PyTorch reference takes the decoder's
positions less the tokens it will generate (what `contract.run_limits.check_layout_positions` allows).
`FrontEnd` checks a clip against it from the clip's length, before anything is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenLimit:
    """tokens: the most tokens a prompt may have.
    positions, new_tokens: the decoder's positions and the tokens to generate, where those set the
    limit (the reference); None where an engine's build did (`tokens` is its --max-tokens)."""

    tokens: int
    positions: int | None = None
    new_tokens: int | None = None
    for_client: bool = False  # a served engine's client, who cannot rebuild it: no build advice

    @classmethod
    def of_engine(cls, max_tokens: int, for_client: bool = False) -> "TokenLimit":
        return cls(max_tokens, for_client=for_client)

    @classmethod
    def of_model(cls, positions: int, new_tokens: int) -> "TokenLimit":
        """The reference's limit: every token, prompt and generated, needs a position."""
        return cls(max(positions - new_tokens, 0), positions, new_tokens)

    def refusal(self, tokens: int) -> str:
        """Why a prompt of `tokens` tokens (more than `self.tokens`) cannot run, and what fixes it: the
        end of a message that starts with what the tokens are ("... give a layout of N tokens")."""
        if self.positions is None:
            engine = f"the engine was built for at most {self.tokens}: send a shorter clip"
            if self.for_client:
                return engine
            return f"{engine}, or rebuild the engine with `fastav-export build --max-tokens {tokens}`"
        limit = (f"the model's {self.positions} positions leave {self.tokens} for the prompt with --max-new-tokens "
                 f"{self.new_tokens}")
        if tokens >= self.positions:  # no room left to generate even one token
            return f"{limit}: pass a shorter clip"
        return f"{limit}: pass a shorter clip, or --max-new-tokens {self.positions - tokens} or fewer"
