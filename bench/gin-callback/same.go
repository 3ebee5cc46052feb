package main

// The replay guard and the exactly-once ledger of wechat-ha's callback, done the plain Go way in
// process memory (one mutex each, a map and a FIFO of its keys for the size bound), so the
// benchmark can compare the same work on both sides. wechat-ha keeps both in its state store
// (here the in-memory one: a conditional put per signed query, a claim and a completion per
// message); this keeps no TTL index and stores the reply as it is, not as a JSON record, so it
// is if anything the cheaper of the two.

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
)

// The bound of each map: the oldest entries go first once it is full. About what wechat-local's
// in-memory store keeps at its 16 MiB cap (some 12,000 messages, each a ledger record and a
// replay record): a larger map would only give Go's collector more to scan.
const sameWorkCapacity = 12_000

type sameWork struct {
	replay boundedMap[[sha256.Size]byte]
	ledger boundedMap[*record]
}

// A ledger record: pending while its reply is built, then the reply every retry gets.
type record struct {
	done   bool
	reply  []byte
	status int
}

func newSameWork() *sameWork {
	return &sameWork{
		replay: newBoundedMap[[sha256.Size]byte](sameWorkCapacity),
		ledger: newBoundedMap[*record](sameWorkCapacity),
	}
}

// admit records the signed query's first use with a digest of what it carried; a repeat passes
// only with the same content (WeChat's retry), other content under it is refused.
func (s *sameWork) admit(c *gin.Context, tag string, content []byte) bool {
	key := c.Query("timestamp") + ":" + c.Query("nonce") + ":" + c.Query("signature")
	h := sha256.New()
	h.Write([]byte(tag))
	h.Write(content)
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	s.replay.mu.Lock()
	defer s.replay.mu.Unlock()
	if known, ok := s.replay.entries[key]; ok {
		return known == digest
	}
	s.replay.insert(key, digest)
	return true
}

// once runs build for the first delivery of msg and answers every later one with its reply
// ("success" while the first is still running, as wechat-ha does past its wait).
func (s *sameWork) once(msg *inbound, build func() ([]byte, int)) ([]byte, int) {
	key := msg.ToUserName + "/" + dedupKey(msg)
	s.ledger.mu.Lock()
	if known, ok := s.ledger.entries[key]; ok {
		// Read under the lock: the first delivery completes the record under it.
		done, reply, status := known.done, known.reply, known.status
		s.ledger.mu.Unlock()
		if done {
			return reply, status
		}
		return []byte("success"), http.StatusOK
	}
	claim := &record{}
	s.ledger.insert(key, claim)
	s.ledger.mu.Unlock()
	reply, status := build()
	s.ledger.mu.Lock()
	claim.done, claim.reply, claim.status = true, reply, status
	s.ledger.mu.Unlock()
	return reply, status
}

// dedupKey is wechat-ha's key of a delivery (Message::dedup_key): MsgId, sender and time for a
// message; sender, time, event and its key for an event; sender, time and type otherwise.
func dedupKey(msg *inbound) string {
	from, at := msg.FromUserName, strconv.FormatInt(msg.CreateTime, 10)
	switch {
	case msg.MsgType == "event":
		return from + ":" + at + ":" + msg.Event + ":" + msg.EventKey
	case msg.MsgID != 0:
		return strconv.FormatInt(msg.MsgID, 10) + ":" + from + ":" + at
	default:
		return from + ":" + at + ":" + msg.MsgType
	}
}

// A map of at most capacity entries; insert evicts the oldest. Callers hold mu.
type boundedMap[V any] struct {
	mu       sync.Mutex
	entries  map[string]V
	order    []string
	next     int
	capacity int
}

func newBoundedMap[V any](capacity int) boundedMap[V] {
	return boundedMap[V]{entries: make(map[string]V, capacity), order: make([]string, 0, capacity), capacity: capacity}
}

func (m *boundedMap[V]) insert(key string, value V) {
	if len(m.order) < m.capacity {
		m.order = append(m.order, key)
	} else {
		delete(m.entries, m.order[m.next])
		m.order[m.next] = key
		m.next = (m.next + 1) % m.capacity
	}
	m.entries[key] = value
}
