"""The chat-model layer: one async protocol, the litellm backend, retries, limits, cache, usage.

Importing this package does not import litellm (that happens on the first real call) and has no
other side effect. Test doubles live in :mod:`mesa_llm.llm.testing`.
"""

from mesa_llm.llm.cache import DiskCache, MemoryCache, ResponseCache
from mesa_llm.llm.errors import LLMError, classify
from mesa_llm.llm.limits import ConcurrencyLimiter
from mesa_llm.llm.litellm_backend import LiteLLMChatModel, check_server, missing_credentials
from mesa_llm.llm.retry import call_with_retries
from mesa_llm.llm.types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    ToolCall,
    Usage,
    complete_sync,
)
from mesa_llm.llm.usage import UsageTotals, UsageTracker

__all__ = [
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "ConcurrencyLimiter",
    "DiskCache",
    "LLMError",
    "LiteLLMChatModel",
    "MemoryCache",
    "ResponseCache",
    "ToolCall",
    "Usage",
    "UsageTotals",
    "UsageTracker",
    "call_with_retries",
    "check_server",
    "classify",
    "complete_sync",
    "missing_credentials",
]
