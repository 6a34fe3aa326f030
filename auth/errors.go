package auth

import "errors"

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
