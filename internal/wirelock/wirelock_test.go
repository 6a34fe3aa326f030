package wirelock

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// engine starts a FerretDB on a unix socket in a temporary directory and
// returns the socket's path.
func engine(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wirelock-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "engine.sock")
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: sock},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	f.MongoDBURI() // blocks until the listener is bound
	t.Cleanup(func() { cancel(); <-done; _ = os.RemoveAll(dir) })
	return sock
}

// client connects a driver to the engine at sock, through relay r when r
// is not nil and directly otherwise.
func client(t testing.TB, sock string, r *Relay) *mongo.Collection {
	t.Helper()
	o := options.Client().SetMaxPoolSize(16).SetTimeout(30 * time.Second)
	if r != nil {
		o.ApplyURI("mongodb://relay/").SetDialer(r)
	} else {
		o.ApplyURI("mongodb://" + url(sock) + "/")
	}
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database("wirelock").Collection(fmt.Sprintf("c%d", time.Now().UnixNano()))
}

// url percent-encodes a socket path for a mongodb:// URI.
func url(sock string) string {
	out := ""
	for _, r := range sock {
		if r == '/' {
			out += "%2F"
		} else {
			out += string(r)
		}
	}
	return out
}

func relayTo(t testing.TB, sock string) *Relay {
	t.Helper()
	r := New(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// concurrently runs f(i) for i in [0, n) at once and fails on any error.
func concurrently(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := f(i); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func counter(t *testing.T, c *mongo.Collection, n int) int {
	t.Helper()
	ctx := context.Background()
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}, {Key: "n", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	concurrently(t, n, func(int) error {
		return c.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "k"}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}).Err()
	})
	var doc struct{ N int }
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "k"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.N
}

// TestEngineLosesConcurrentUpdates records the engine fact the package
// exists for. If a FerretDB upgrade makes updates atomic, this fails, and
// the relay may go.
func TestEngineLosesConcurrentUpdates(t *testing.T) {
	sock := engine(t)
	if n := counter(t, client(t, sock, nil), 200); n == 200 {
		t.Fatalf("200 concurrent $inc straight to the engine left n = %d: updates look atomic now", n)
	} else {
		t.Logf("200 concurrent $inc straight to the engine left n = %d", n)
	}
}

func TestIncrementsThroughTheRelayAreAtomic(t *testing.T) {
	sock := engine(t)
	r := relayTo(t, sock)
	if n := counter(t, client(t, sock, r), 200); n != 200 {
		t.Fatalf("200 concurrent $inc through the relay left n = %d", n)
	}
	if len(r.locks.keys) != 0 {
		t.Errorf("%d document locks left behind", len(r.locks.keys))
	}
}

func TestCompareAndSwapHasOneWinner(t *testing.T) {
	sock := engine(t)
	c := client(t, sock, relayTo(t, sock))
	ctx := context.Background()
	for round := range 10 {
		id := fmt.Sprint(round)
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 0}}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		won := 0
		concurrently(t, 50, func(i int) error {
			res, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 0}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: i + 1}}}})
			if err != nil {
				return err
			}
			mu.Lock()
			won += int(res.ModifiedCount)
			mu.Unlock()
			return nil
		})
		if won != 1 {
			t.Fatalf("round %d: %d of 50 compare-and-swap writers won, want 1", round, won)
		}
	}
}

// TestSetOfOneFieldKeepsAnother: a secret rotated while other writers set
// another field of the same document stays rotated.
func TestSetOfOneFieldKeepsAnother(t *testing.T) {
	sock := engine(t)
	c := client(t, sock, relayTo(t, sock))
	ctx := context.Background()
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}, {Key: "secret", Value: 0}, {Key: "seen", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	const rotations = 50
	var wg sync.WaitGroup
	wg.Add(2)
	stop := make(chan struct{})
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seen", Value: i}}}})
		}
	}()
	go func() {
		defer wg.Done()
		defer close(stop)
		for i := 1; i <= rotations; i++ {
			if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "secret", Value: i}}}}); err != nil {
				t.Error(err)
				return
			}
			var doc struct{ Secret int }
			if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "k"}}).Decode(&doc); err != nil {
				t.Error(err)
				return
			}
			if doc.Secret != i {
				t.Errorf("rotation %d read back as %d: a concurrent $set of another field undid it", i, doc.Secret)
			}
		}
	}()
	wg.Wait()
}

// TestWritesOfManyDocumentsAreExclusive: an update by another field than
// _id cannot interleave with single-document writes.
func TestWritesOfManyDocumentsAreExclusive(t *testing.T) {
	sock := engine(t)
	r := relayTo(t, sock)
	c := client(t, sock, r)
	ctx := context.Background()
	docs := []any{}
	for i := range 10 {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprint(i)}, {Key: "g", Value: 1}, {Key: "n", Value: 0}})
	}
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	concurrently(t, 100, func(i int) error {
		var err error
		if i%2 == 0 {
			_, err = c.UpdateMany(ctx, bson.D{{Key: "g", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
		} else {
			_, err = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprint(i % 10)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
		}
		return err
	})
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var got []struct{ N int }
	if err := cur.All(ctx, &got); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, d := range got {
		total += d.N
	}
	if want := 50*10 + 50; total != want {
		t.Fatalf("increments add up to %d, want %d", total, want)
	}
}

// TestClosedConnectionReleasesItsLocks: a client that vanishes while its
// write is in flight holds nothing afterwards.
func TestClosedConnectionReleasesItsLocks(t *testing.T) {
	sock := engine(t)
	r := relayTo(t, sock)
	for range 20 {
		c := client(t, sock, r)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, _ = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}, options.UpdateOne().SetUpsert(true))
		cancel()
		_ = c.Database().Client().Disconnect(context.Background())
	}
	c := client(t, sock, r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 2}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatalf("a write after abandoned ones: %v", err)
	}
}

// BenchmarkFindByID measures what the relay adds to a read by _id, the
// session check's one database call: the same look-ups straight to the
// engine and through the relay, interleaved, in one run.
func BenchmarkFindByID(b *testing.B) {
	sock := engine(b)
	direct, relayed := client(b, sock, nil), client(b, sock, relayTo(b, sock))
	ctx := context.Background()
	for _, c := range []*mongo.Collection{direct, relayed} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}, {Key: "data", Value: "some session"}}); err != nil {
			b.Fatal(err)
		}
	}
	var took [2]time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := []*mongo.Collection{direct, relayed}[i%2].FindOne(ctx, bson.D{{Key: "_id", Value: "k"}}).Err(); err != nil {
			b.Fatal(err)
		}
		took[i%2] += time.Since(start)
	}
	b.ReportMetric(float64(took[1])/float64(took[0]), "relayed/direct")
}

// TestAbandonedWriteKeepsItsLockUntilItsReply: a client that goes away
// with a write in flight does not release its document's lock; the
// engine runs that write all the same, and a later write to the document
// reaches the engine only after its reply. (Released early, the abandoned
// write could overwrite the later one, acknowledged meanwhile.)
func TestAbandonedWriteKeepsItsLockUntilItsReply(t *testing.T) {
	r, arrived, answer := scriptedRelay(t)
	ctx := context.Background()

	a, err := r.DialContext(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(updateByID(1, "k")); err != nil {
		t.Fatal(err)
	}
	if id := <-arrived; id != 1 {
		t.Fatalf("the engine got request %d, want 1", id)
	}
	_ = a.Close() // gone, with its write in the engine

	b, err := r.DialContext(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go func() { _, _ = b.Write(updateByID(2, "k")) }()
	select {
	case id := <-arrived:
		t.Fatalf("request %d reached the engine while the abandoned write to its document ran", id)
	case <-time.After(300 * time.Millisecond):
	}
	answer <- struct{}{} // the abandoned write's reply
	select {
	case id := <-arrived:
		if id != 2 {
			t.Fatalf("the engine got request %d, want 2", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second write never reached the engine after the first one's reply")
	}
	answer <- struct{}{}
	if reply, err := readMessage(b); err != nil || responseTo(reply) != 2 {
		t.Fatalf("the second write's reply: %v, %v", reply, err)
	}
}

// TestWriteQueuedByAGoneClientIsDropped: a write that waits for its
// document's lock when its client goes away never reaches the engine (no
// one waits for it, and it has not happened), so a client hanging up on
// writes to one document in a loop does not queue them all for the engine.
func TestWriteQueuedByAGoneClientIsDropped(t *testing.T) {
	r, arrived, answer := scriptedRelay(t)
	ctx := context.Background()
	dial := func() net.Conn {
		c, err := r.DialContext(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	a := dial()
	if _, err := a.Write(updateByID(1, "k")); err != nil {
		t.Fatal(err)
	}
	if id := <-arrived; id != 1 {
		t.Fatalf("the engine got request %d, want 1", id)
	}
	c := dial()
	if _, err := c.Write(updateByID(3, "k")); err != nil { // read by the relay, then waits for the lock
		t.Fatal(err)
	}
	_ = c.Close()
	time.Sleep(100 * time.Millisecond) // the relay sees c gone
	answer <- struct{}{}               // 1's reply: the lock passes on
	if reply, err := readMessage(a); err != nil || responseTo(reply) != 1 {
		t.Fatalf("the first write's reply: %v, %v", reply, err)
	}
	b := dial()
	if _, err := b.Write(updateByID(2, "k")); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-arrived:
		if id != 2 {
			t.Fatalf("the engine got request %d of a client that had gone, want only 2", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the live client's write never reached the engine")
	}
	answer <- struct{}{}
	if reply, err := readMessage(b); err != nil || responseTo(reply) != 2 {
		t.Fatalf("the second write's reply: %v, %v", reply, err)
	}
}

// scriptedRelay returns a relay to a scripted engine, which reports the id
// of each request it receives on arrived and answers it {ok: 1} once told
// on answer.
func scriptedRelay(t *testing.T) (r *Relay, arrived <-chan int32, answer chan<- struct{}) {
	ids, next := make(chan int32, 4), make(chan struct{})
	r = New(func(context.Context) (net.Conn, error) {
		relaySide, engineSide := net.Pipe()
		go func() {
			for {
				msg, err := readMessage(engineSide)
				if err != nil {
					return
				}
				ids <- requestID(msg)
				<-next
				if _, err := engineSide.Write(okReply(requestID(msg))); err != nil {
					return
				}
			}
		}()
		return relaySide, nil
	})
	t.Cleanup(func() { close(next); _ = r.Close() })
	return r, ids, next
}

// updateByID is an update command with request id id of the document
// with _id key.
func updateByID(id int32, key string) []byte {
	stmt := bsoncore.NewDocumentBuilder().
		AppendDocument("q", bsoncore.NewDocumentBuilder().AppendString("_id", key).Build()).
		AppendDocument("u", bsoncore.NewDocumentBuilder().AppendDocument("$set",
			bsoncore.NewDocumentBuilder().AppendInt32("x", id).Build()).Build()).
		Build()
	body := bsoncore.NewDocumentBuilder().
		AppendString("update", "c").
		AppendArray("updates", bsoncore.NewArrayBuilder().AppendDocument(stmt).Build()).
		AppendString("$db", "db").
		Build()
	return message(id, 0, body)
}

// okReply is the reply {ok: 1} to request id.
func okReply(id int32) []byte {
	return message(0, id, bsoncore.NewDocumentBuilder().AppendDouble("ok", 1).Build())
}

func message(id, responseTo int32, body []byte) []byte {
	i, msg := wiremessage.AppendHeaderStart(nil, id, responseTo, wiremessage.OpMsg)
	msg = wiremessage.AppendMsgFlags(msg, 0)
	msg = wiremessage.AppendMsgSectionType(msg, wiremessage.SingleDocument)
	msg = append(msg, body...)
	return bsoncore.UpdateLength(msg, i, int32(len(msg[i:])))
}
