"""Errors the gateway returns, in OpenAI's shape, with a stable machine code.

Every error body is ``{"error": {"message", "type", "param", "code"}}``; the message names
the value at fault and what to do. Handlers raise GatewayError; one exception handler in
the app turns it into the response, so no route writes error JSON by hand.

    GatewayError
    +-- InvalidRequest      400 invalid_request
    +-- CannotEstimateError 400 cannot_estimate
    +-- InvalidApiKey       401 invalid_api_key
    +-- NoBudget            403 no_budget
    +-- ModelNotFound       404 model_not_found
    +-- NoRoutePolicy       404 no_route_policy
    +-- NotFound            404 not_found (paths the gateway does not serve)
    +-- RequestTooLarge     413 request_too_large
    +-- BudgetExceededError 429 budget_exceeded
    +-- LoopDetected        429 loop_detected
    +-- UpstreamFailed      502 upstream_error
    +-- LedgerDown          503 ledger_unavailable
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """An error response: HTTP status, OpenAI error type, machine code and a message."""

    status = 500
    error_type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Build the JSON error body."""
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status, error_type, code = 400, "invalid_request_error", "invalid_request"


class CannotEstimateError(GatewayError):
    status, error_type, code = 400, "invalid_request_error", "cannot_estimate"


class InvalidApiKey(GatewayError):
    status, error_type, code = 401, "authentication_error", "invalid_api_key"


class NoBudget(GatewayError):
    status, error_type, code = 403, "permission_error", "no_budget"


class ModelNotFound(GatewayError):
    status, error_type, code = 404, "invalid_request_error", "model_not_found"


class NoRoutePolicy(GatewayError):
    status, error_type, code = 404, "invalid_request_error", "no_route_policy"


class NotFound(GatewayError):
    status, error_type, code = 404, "invalid_request_error", "not_found"


class RequestTooLarge(GatewayError):
    status, error_type, code = 413, "invalid_request_error", "request_too_large"


class BudgetExceededError(GatewayError):
    """429 that OpenAI SDKs must not retry: the budget will not grow by waiting a second."""

    status, error_type, code = 429, "insufficient_quota", "budget_exceeded"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, param=param, headers={"x-should-retry": "false", **(headers or {})})


class LoopDetected(GatewayError):
    status, error_type, code = 429, "rate_limit_error", "loop_detected"


class UpstreamFailed(GatewayError):
    status, error_type, code = 502, "api_error", "upstream_error"


class LedgerDown(GatewayError):
    status, error_type, code = 503, "api_error", "ledger_unavailable"
