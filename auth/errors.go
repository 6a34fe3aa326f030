package auth

import (
	"errors"
	"time"
)

// Errors the service returns for the transport to translate. Anything else
// is unexpected and must not reach a client.
var (
	// ErrInvalidCredentials: unknown username or wrong password; the two are
	// deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrUnauthenticated: the operation needs a live session and the request
	// has none.
	ErrUnauthenticated = errors.New("not signed in")
	// ErrSignupDisabled: registration is turned off.
	ErrSignupDisabled = errors.New("sign-up is disabled")
	// ErrWrongPassword: changePassword's current password is wrong.
	ErrWrongPassword = errors.New("current password is incorrect")
)

// ErrBusy: every bcrypt slot is taken and the wait in line ran out.
var ErrBusy = &ThrottledError{RetryAfter: time.Second}

// ThrottledError refuses a request for a while: too many failed attempts,
// or too much bcrypt work already in progress.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return "too many requests, retry later" }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// InputError is input a client must fix; its text is safe to show.
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
