package graph

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"gatehouse/auth"
	"gatehouse/graph/model"
)

// graphQLCodes is the one mapping from auth's error codes to the codes
// clients see. Every code but EInternal shows the error's message.
var graphQLCodes = map[string]string{
	auth.EInvalid:         model.CodeBadUserInput,
	auth.EUnauthenticated: model.CodeUnauthenticated,
	auth.EForbidden:       model.CodeForbidden,
	auth.EThrottled:       model.CodeTooManyRequests,
	auth.EBadRequest:      model.CodeBadRequest,
	auth.EIncomplete:      model.CodeInternal,
	auth.EInternal:        model.CodeInternal,
}

// internalMessage is all a client learns of an unexpected error.
const internalMessage = "internal server error"

// publicError is err as a client sees it: the message and extensions.code
// its auth code maps to (and retryAfter, in seconds, when it is
// throttled; secondFactorRequired when a pending session asked for more
// than it may), or a bare internal error that reveals nothing.
func publicError(err error) *gqlerror.Error {
	code, msg := auth.ErrorCode(err), auth.ErrorMessage(err)
	if code == auth.EInternal {
		msg = internalMessage // the detail is for the server log
	}
	gerr := &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": graphQLCodes[code]}}
	var throttled *auth.ThrottledError
	if errors.As(err, &throttled) {
		gerr.Extensions["retryAfter"] = throttled.RetryAfterSeconds()
	}
	if errors.Is(err, auth.ErrSecondFactorRequired) {
		gerr.Extensions["secondFactorRequired"] = true
	}
	return gerr
}

// presentError gives every error an extensions.code. Errors about the
// request that gqlgen raised itself (parse, validation, argument coercion)
// already carry one; errors with an auth code are mapped by publicError;
// anything else is logged with its detail and shown as a bare
// INTERNAL_SERVER_ERROR.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		if auth.ErrorCode(err) != auth.EInternal {
			pub := publicError(err)
			gerr.Message, gerr.Extensions = pub.Message, pub.Extensions
			return gerr
		}
		if _, ok := gerr.Extensions["code"]; ok {
			return gerr // gqlgen's parse and validation errors, bad scalars, limits
		}
		if gerr.Err == nil && len(gerr.Path) == 0 {
			// gqlgen's own word on a request it could not take (a body
			// that is not JSON, no operation): meant for the client. It
			// quotes a body that is not JSON whole, password and all;
			// the client has it already.
			if strings.HasPrefix(gerr.Message, "json request body could not be decoded") {
				gerr.Message = bodyDecodeMessage(gerr.Message)
			}
			gerr.Extensions = map[string]any{"code": model.CodeBadRequest}
			return gerr
		}
		level := slog.LevelError
		if errors.Is(ctx.Err(), context.Canceled) {
			// The client hung up: its request failed because it went,
			// not because of the server, and a client that does it in a
			// loop must not fill the log with errors.
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "request failed", "id", requestID(ctx), "path", gerr.Path.String(), "err", err)
		pub := publicError(err)
		pub.Path = gerr.Path
		return pub
	}
}

// bodyDecodeMessage is what a client is told of a request body that does
// not decode: gqlgen's message quotes a body that is not JSON whole,
// password and all, and names Go's types for a member of the wrong type.
func bodyDecodeMessage(msg string) string {
	for member, want := range map[string]string{
		"query": "a string", "operationName": "a string", "variables": "an object", "extensions": "an object",
	} {
		if strings.Contains(msg, "Go struct field RawParams."+member+" ") {
			return "the request body's " + member + " must be " + want
		}
	}
	return "the request body is not a JSON object of a GraphQL request"
}

// refuse answers with status a request turned away before GraphQL runs,
// with err as the one entry of a GraphQL errors list. The auth middleware
// calls it for a cross-site request (status 400).
func refuse(w http.ResponseWriter, status int, err error) {
	body, _ := json.Marshal(struct {
		Errors gqlerror.List `json:"errors"`
	}{gqlerror.List{publicError(err)}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
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
