package graph

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"gatehouse/auth"
)

// Error codes, as Apollo clients expect them in extensions.code.
const (
	codeUnauthenticated = "UNAUTHENTICATED"
	codeBadUserInput    = "BAD_USER_INPUT"
	codeForbidden       = "FORBIDDEN"
	codeInternal        = "INTERNAL_SERVER_ERROR"
	codeTooMany         = "TOO_MANY_REQUESTS"
	codeBadRequest      = "BAD_REQUEST"
)

// codeOf maps the errors resolvers may show to a client; "" means the
// error is unexpected and must be hidden.
func codeOf(err error) string {
	var input *auth.InputError
	var throttled *auth.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return codeTooMany
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrUnauthenticated):
		return codeUnauthenticated
	case errors.Is(err, auth.ErrSignupDisabled):
		return codeForbidden
	case errors.Is(err, auth.ErrWrongPassword), errors.As(err, &input):
		return codeBadUserInput
	}
	return ""
}

// presentError gives every error an extensions.code. Errors about the
// request that gqlgen raised itself (parse, validation, argument coercion)
// already carry one; resolver errors are mapped by codeOf; anything else is
// logged with its detail and shown as a bare INTERNAL_SERVER_ERROR.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		if code := codeOf(err); code != "" {
			gerr.Message = publicMessage(err)
			gerr.Extensions = map[string]any{"code": code}
			var throttled *auth.ThrottledError
			if errors.As(err, &throttled) {
				gerr.Extensions["retryAfter"] = throttled.RetryAfterSeconds()
			}
			return gerr
		}
		if _, ok := gerr.Extensions["code"]; ok {
			return gerr // gqlgen's parse and validation errors, bad scalars
		}
		if gerr.Err == nil && len(gerr.Path) == 0 {
			// gqlgen's own word on a request it could not take (a body
			// that is not JSON, no operation): meant for the client.
			gerr.Extensions = map[string]any{"code": codeBadRequest}
			return gerr
		}
		log.ErrorContext(ctx, "request failed", "id", requestID(ctx), "path", gerr.Path.String(), "err", err)
		return &gqlerror.Error{
			Message:    "internal server error",
			Path:       gerr.Path,
			Extensions: map[string]any{"code": codeInternal},
		}
	}
}

// publicMessage is the innermost message of a known error, without the
// wrapping context of the layers it passed.
func publicMessage(err error) string {
	var input *auth.InputError
	var throttled *auth.ThrottledError
	if errors.As(err, &input) {
		return input.Error()
	} else if errors.As(err, &throttled) {
		return throttled.Error()
	}
	for _, known := range []error{auth.ErrInvalidCredentials, auth.ErrUnauthenticated, auth.ErrSignupDisabled, auth.ErrWrongPassword} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return err.Error()
}

// recoverPanic turns a resolver panic into an internal error for that
// request, logging the value and stack; the server keeps serving.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.ErrorContext(ctx, "resolver panic", "id", requestID(ctx), "panic", v, "stack", string(stack()))
		return errors.New("internal: panic in resolver")
	}
}

func stack() []byte { return debug.Stack() }
