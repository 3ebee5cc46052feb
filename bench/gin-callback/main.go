// Command gin-callback is the comparison baseline of docs/benchmarks.md: the same WeChat
// plaintext callback as wechat-ha's (GET verify + POST text echo), written the usual way with
// Gin, so both can be load-tested side by side with the same wrk scripts (scripts/load.sh).
//
// It does what a typical Gin implementation does and no more: SHA-1 URL signature check in
// constant time (403 otherwise), body limit, XML decode, an echoed passive text reply. It keeps
// no idempotency ledger, no request ids and no logs — wechat-ha does all three on every request.
//
// With GIN_SAME_WORK=1 it also does, in process memory, the two things wechat-ha's callback does
// on every message that a typical implementation leaves out (same.go): the replay guard (a signed
// query carries one body: a SHA-256 of what it carried, recorded on first use) and the
// exactly-once ledger (a message's key claimed before the reply is built, the reply stored for
// WeChat's retries). scripts/load.sh runs it as a second peer with SAME_WORK_PEER=1: the ratio
// against it is the cost of the plumbing alone, the work being the same on both sides.
package main

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

const maxBody = 64 << 10

type inbound struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Content      string `xml:"Content"`
	MsgID        int64  `xml:"MsgId"`
	Event        string `xml:"Event"`
	EventKey     string `xml:"EventKey"`
}

type cdata struct {
	Value string `xml:",cdata"`
}

type textReply struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   cdata    `xml:"ToUserName"`
	FromUserName cdata    `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      cdata    `xml:"MsgType"`
	Content      cdata    `xml:"Content"`
}

func signed(token string, c *gin.Context) bool {
	parts := []string{token, c.Query("timestamp"), c.Query("nonce")}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	want := hex.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.Query("signature"))) == 1
}

// reply is the passive answer to msg: its text echoed, or "success" for anything else.
func reply(msg *inbound) ([]byte, int) {
	if msg.MsgType != "text" {
		return []byte("success"), http.StatusOK
	}
	out, err := xml.Marshal(textReply{
		ToUserName:   cdata{msg.FromUserName},
		FromUserName: cdata{msg.ToUserName},
		CreateTime:   time.Now().Unix(),
		MsgType:      cdata{"text"},
		Content:      cdata{msg.Content},
	})
	if err != nil {
		return []byte("encode"), http.StatusInternalServerError
	}
	return out, http.StatusOK
}

func main() {
	token := os.Getenv("WECHAT_TOKEN")
	if token == "" {
		token = "wechat-ha-demo-token"
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "3001"
	}
	var same *sameWork
	if os.Getenv("GIN_SAME_WORK") == "1" {
		same = newSameWork()
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/wechat", func(c *gin.Context) {
		if !signed(token, c) {
			c.String(http.StatusForbidden, "invalid signature")
			return
		}
		if same != nil && !same.admit(c, "echostr:", []byte(c.Query("echostr"))) {
			c.String(http.StatusForbidden, "invalid signature")
			return
		}
		c.String(http.StatusOK, c.Query("echostr"))
	})
	r.POST("/wechat", func(c *gin.Context) {
		if !signed(token, c) {
			c.String(http.StatusForbidden, "invalid signature")
			return
		}
		body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxBody+1))
		if err != nil || len(body) > maxBody {
			c.String(http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		var msg inbound
		if err := xml.Unmarshal(body, &msg); err != nil {
			c.String(http.StatusBadRequest, "bad xml")
			return
		}
		if same == nil {
			out, status := reply(&msg)
			c.Data(status, "application/xml", out)
			return
		}
		if !same.admit(c, "body:", body) {
			c.String(http.StatusForbidden, "invalid signature")
			return
		}
		out, status := same.once(&msg, func() ([]byte, int) { return reply(&msg) })
		c.Data(status, "application/xml", out)
	})
	addr := "127.0.0.1:" + port
	if _, err := strconv.Atoi(port); err != nil {
		panic("PORT must be a number")
	}
	if err := r.Run(addr); err != nil {
		panic(err)
	}
}
