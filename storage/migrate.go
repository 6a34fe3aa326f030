package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// LayoutVersion is the version of the document layout this code writes
// (the `meta` document `layout`): 2 added the users' session lists and the
// expiry files, 3 second factors (an older gatehouse would let a user with
// one sign in on the password alone, so it must refuse). A database of a higher version was written by a newer
// gatehouse, and Open refuses it.
const LayoutVersion = 3

// NewerLayoutError is Open's error for a database whose layout a newer
// gatehouse wrote: this one could misread it, and would not migrate it.
type NewerLayoutError struct {
	Version int // the database's
}

func (e *NewerLayoutError) Error() string {
	return fmt.Sprintf("storage: the database has layout version %d, newer than this gatehouse knows (%d): "+
		"it was written by a newer gatehouse; run that version (or a newer one), or restore a backup made by this one", e.Version, LayoutVersion)
}

// migrate brings a database written by an older gatehouse to the current
// layout: it lists and files every stored session, once. It is idempotent,
// so instances starting together may all run it.
func (s *Store) migrate(ctx context.Context) error {
	var layout struct {
		Version int `bson:"version"`
	}
	err := s.meta.FindOne(ctx, byID("layout")).Decode(&layout)
	if err == nil && layout.Version > LayoutVersion {
		return &NewerLayoutError{Version: layout.Version}
	} else if err == nil && layout.Version == LayoutVersion {
		return nil
	} else if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return translate("read layout", err)
	}
	cur, err := s.sessions.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{
		{Key: "userId", Value: 1}, {Key: "createdAt", Value: 1}, {Key: "lastSeenAt", Value: 1}, {Key: "expiresAt", Value: 1},
	}))
	if err != nil {
		return translate("migrate sessions", err)
	}
	var all []*Session
	for cur.Next(ctx) {
		var d struct {
			ID         string    `bson:"_id"`
			UserID     string    `bson:"userId"`
			CreatedAt  time.Time `bson:"createdAt"`
			LastSeenAt time.Time `bson:"lastSeenAt"`
			ExpiresAt  time.Time `bson:"expiresAt"`
		}
		if err := cur.Decode(&d); err != nil {
			return translate("migrate sessions", err)
		}
		all = append(all, &Session{ID: d.ID, UserID: d.UserID, CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt, ExpiresAt: d.ExpiresAt})
	}
	if err := cur.Err(); err != nil {
		return translate("migrate sessions", err)
	}
	slices.SortFunc(all, func(a, b *Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	byUser := map[string][]string{}
	for _, sess := range all {
		byUser[sess.UserID] = append(byUser[sess.UserID], sess.ID)
	}
	for user, ids := range byUser {
		_, err := s.userSessions.UpdateOne(ctx, byID(user),
			bson.D{{Key: "$addToSet", Value: bson.D{{Key: "ids", Value: bson.D{{Key: "$each", Value: ids}}}}}},
			options.UpdateOne().SetUpsert(true))
		if err != nil {
			return translate("migrate sessions", err)
		}
	}
	if err := s.fileExpiries(ctx, all); err != nil {
		return err
	}
	_, err = s.meta.UpdateOne(ctx, byID("layout"), bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: LayoutVersion}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return translate("write layout", err)
	}
	return nil
}
