package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Look-alike names. Each user claims its names' look-alike keys (their
// confusable skeletons, which auth computes) by inserting one document per
// key into the names collection, with the look-alike key as _id and the
// user's key as owner. An insert with a unique _id is the one write that
// every engine, the embedded one included, makes atomic: of two concurrent
// registrations of look-alike names exactly one gets the claim. Claims are
// never updated or deleted, so a claim's owner never changes. A
// registration that fails after claiming (a database error, or a later
// claim or the user key taken) leaves its claims to its key: they reserve
// the look-alikes of a name that anyone may still register, which blocks
// no more than registering the name would.
const namesCollection = "names"

type nameDoc struct {
	Name  string `bson:"_id"`   // the look-alike key
	Owner string `bson:"owner"` // the key of the user it belongs to
}

// claimNames claims each of names for the user key. It returns
// ErrDuplicate if another key owns one of them. Names are claimed in sorted
// order, so that two registrations that share several names contend for
// the smallest first and cannot each hold one the other needs.
func (s *Store) claimNames(ctx context.Context, key string, names []string) error {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	for _, n := range names {
		owner, err := s.claimName(ctx, n, key)
		if err != nil {
			return err
		}
		if owner != key {
			return ErrDuplicate
		}
	}
	return nil
}

// claimName inserts the claim of name for key and returns the claim's
// owner: key, or whichever key claimed name first.
func (s *Store) claimName(ctx context.Context, name, key string) (string, error) {
	_, err := s.names.InsertOne(ctx, nameDoc{Name: name, Owner: key})
	if err == nil {
		return key, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return "", fmt.Errorf("storage: claim name: %w", err)
	}
	return s.NameOwner(ctx, name)
}

// NameOwner returns the key of the user that owns look-alike key name, or
// ErrNotFound if no user has claimed it.
func (s *Store) NameOwner(ctx context.Context, name string) (string, error) {
	var d nameDoc
	if err := s.names.FindOne(ctx, byID(name)).Decode(&d); err != nil {
		return "", translate("name owner", err)
	}
	return d.Owner, nil
}

// ClaimNamesOfUsers claims names(u) for every existing user u, for users
// created before their names were claimed at creation. It runs once per
// version: when every user is done it writes a marker document named after
// version, and a later call with the same version only reads the marker.
// (A new version, such as a new Unicode table, claims the new look-alike
// keys of everyone.) It is idempotent, and safe beside registrations and
// other instances doing the same. A name that another user's key owns
// already is not an error: collided(u, name, owner) is called, and the
// claims go on.
func (s *Store) ClaimNamesOfUsers(ctx context.Context, version string, names func(*User) []string, collided func(u *User, name, owner string)) error {
	// A tab never appears in a look-alike key: usernames have no controls.
	marker := "\tclaimed: " + version
	if _, err := s.NameOwner(ctx, marker); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	cur, err := s.users.Find(ctx, bson.D{}, options.Find().SetBatchSize(batchSize))
	if err != nil {
		return fmt.Errorf("storage: claim names of users: %w", err)
	}
	defer cur.Close(ctx)
	var batch []*User
	for cur.Next(ctx) {
		var d userDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("storage: claim names of users: %w", err)
		}
		u := User(d)
		if batch = append(batch, &u); len(batch) == batchSize {
			if err := s.claimBatch(ctx, batch, names, collided); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("storage: claim names of users: %w", err)
	}
	if err := s.claimBatch(ctx, batch, names, collided); err != nil {
		return err
	}
	if _, err := s.claimName(ctx, marker, ""); err != nil {
		return err
	}
	return nil
}

const batchSize = 500

// claimBatch claims the names of users with one unordered insert; the
// claims that exist already are looked up one by one.
func (s *Store) claimBatch(ctx context.Context, users []*User, names func(*User) []string, collided func(u *User, name, owner string)) error {
	var docs []nameDoc
	var of []*User // of[i] is the user of docs[i]
	for _, u := range users {
		for _, n := range slices.Compact(slices.Sorted(slices.Values(names(u)))) {
			docs = append(docs, nameDoc{Name: n, Owner: u.Key})
			of = append(of, u)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := s.names.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err != nil && !errors.As(err, &bwe) {
		return fmt.Errorf("storage: claim names of users: %w", err)
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return fmt.Errorf("storage: claim names of users: %w", we)
		}
		d := docs[we.Index]
		owner, err := s.NameOwner(ctx, d.Name)
		if err != nil {
			return err
		}
		if owner != d.Owner {
			collided(of[we.Index], d.Name, owner)
		}
	}
	if bwe.WriteConcernError != nil {
		return fmt.Errorf("storage: claim names of users: %w", err)
	}
	return nil
}
