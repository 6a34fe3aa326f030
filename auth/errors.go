package auth

import (
	"errors"
	"time"
)

// Error codes say what kind of failure an error is. They are defined here
// once; graph alone turns them into what a client sees, and the login
// metrics count by them.
const (
	// EInvalid: input the client must fix.
	EInvalid = "invalid"
	// EUnauthenticated: the request has no live session, or its
	// credentials are wrong.
	EUnauthenticated = "unauthenticated"
	// EForbidden: no caller may do this (sign-up is disabled).
	EForbidden = "forbidden"
	// EThrottled: too many attempts or too much work; retry later.
	EThrottled = "throttled"
	// EBadRequest: the HTTP request itself is refused, before any
	// operation runs.
	EBadRequest = "bad_request"
	// EIncomplete: a change was made but a later step of the same
	// request failed; the message says which, so the client knows.
	EIncomplete = "incomplete"
	// EInternal: anything unexpected. Its detail is for the server log,
	// never for a client.
	EInternal = "internal"
)

// Error is an error with a code: Code says what kind it is, and Message
// is safe to show a client as it is (graph hides it only for EInternal).
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) code() string  { return e.Code }

// coded is an error that carries one of the codes above: an *Error, or one
// of the types below that add detail to theirs. Nothing outside auth has
// one.
type coded interface {
	error
	code() string
}

// ErrorCode returns the code of the first error in err's chain that
// carries one, EInternal for any other error, and "" for nil.
func ErrorCode(err error) string {
	var c coded
	if err == nil {
		return ""
	} else if errors.As(err, &c) {
		return c.code()
	}
	return EInternal
}

// ErrorMessage returns the message of the first error in err's chain that
// carries a code, without the context of the layers it passed, and
// "internal error" for any other error: its text is not for a client.
func ErrorMessage(err error) string {
	var c coded
	if err == nil {
		return ""
	} else if errors.As(err, &c) {
		return c.Error()
	}
	return "internal error"
}

// Errors the service returns; errors.Is tells them apart where the
// difference matters to a caller.
var (
	// ErrInvalidCredentials: unknown username or wrong password; the two are
	// deliberately indistinguishable.
	ErrInvalidCredentials = &Error{Code: EUnauthenticated, Message: "invalid username or password"}
	// ErrUnauthenticated: the operation needs a live session and the request
	// has none.
	ErrUnauthenticated = &Error{Code: EUnauthenticated, Message: "not signed in"}
	// ErrSignupDisabled: registration is turned off.
	ErrSignupDisabled = &Error{Code: EForbidden, Message: "sign-up is disabled"}
	// ErrWrongPassword: changePassword's current password is wrong.
	ErrWrongPassword = &Error{Code: EInvalid, Message: "current password is incorrect"}
	// errCrossSite: a cookie-authenticated request that another site's
	// page could have sent (see crossSiteCapable).
	errCrossSite = &Error{Code: EBadRequest, Message: "this request authenticates with a cookie and could come from another site: " +
		"send it as POST with Content-Type: application/json, or add an Apollo-Require-Preflight header"}
)

// ErrBusy: every bcrypt slot is taken and the wait in line ran out.
var ErrBusy = &ThrottledError{RetryAfter: time.Second}

// ThrottledError refuses a request for a while: too many failed attempts,
// or too much bcrypt work already in progress. Its code is EThrottled.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return "too many requests, retry later" }

func (e *ThrottledError) code() string { return EThrottled }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// InputError is input a client must fix, naming the field; its text is
// safe to show. Its code is EInvalid.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + " " + e.Reason
}

func (e *InputError) code() string { return EInvalid }
