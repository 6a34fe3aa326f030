package model

import "time"

// User is an account as GraphQL shows it. It is written by hand, not
// generated, for Key: the user's database key, which the resolvers of its
// second-factor fields look the account up by. Key is never shown.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"createdAt"`
	Key       string    `json:"-"`
}
