// Package corpus owns the benchmark corpus: a Go port of bench/gen-corpus.js
// (the shared generator, copied into the repository) that produces the same
// deterministic stream of Segment/RudderStack events byte for byte, so Go
// benchmarks and the Node reference figures run on the same mix: 30%
// identify, 60% track (Product Viewed, Checkout Started, custom events) and
// 10% Order Completed with 3 products.
//
// The port exists so `make bench` needs no Node and can generate a million
// events without holding a JSON array of them in memory. TestMatchesNode
// checks it against the script whenever node is installed.
package corpus

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// mulberry32 is the script's seeded PRNG, with JavaScript's 32-bit
// arithmetic done in uint32.
type mulberry32 struct{ s uint32 }

func (m *mulberry32) next() float64 {
	m.s += 0x6d2b79f5
	s := m.s
	t := (s ^ s>>15) * (1 | s)
	t = (t + (t^t>>7)*(61|t)) ^ t
	return float64(t^t>>14) / 4294967296
}

// Generator yields the corpus one event at a time. The zero value is not
// usable; call New.
type Generator struct {
	r     mulberry32
	users []user
	i     int
}

type user struct {
	userID, anonymousID, firstName, lastName, email, city, ip, ua string
}

var (
	first        = []string{"Alice", "Bob", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kira", "Liam", "Mei", "Nora", "Omar", "Priya"}
	last         = []string{"Smith", "Garcia", "Chen", "Okafor", "Müller", "Rossi", "Kowalski", "Nguyen", "Haddad", "Silva", "Tanaka", "Brown"}
	cities       = []string{"San Francisco", "New York", "Austin", "Seattle", "Chicago", "Boston", "Denver", "Portland", "Atlanta", "Miami"}
	plans        = []string{"free", "starter", "pro", "enterprise"}
	cats         = []string{"Shoes", "Apparel", "Electronics", "Home", "Beauty", "Toys", "Books", "Garden"}
	brands       = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne"}
	customEvents = []string{"Button Clicked", "Video Played", "Signup Step Completed", "Search Performed", "Coupon Applied", "Newsletter Subscribed"}
	currencies   = []string{"USD", "USD", "USD", "EUR", "GBP", "CAD"}
	uas          = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
	}
)

const (
	nUsers = 20000
	seed   = 0x5eed1234
)

// base is Date.parse('2024-05-01T00:00:00.000Z') in milliseconds.
var base = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// New starts the corpus at its first event.
func New() *Generator {
	g := &Generator{r: mulberry32{s: seed}}
	g.users = make([]user, nUsers)
	for i := range g.users {
		f, l := g.pick(first), g.pick(last)
		u := user{userID: "user_" + strconv.Itoa(100000+i), firstName: f, lastName: l}
		u.anonymousID = g.uuid()
		u.email = strings.ToLower(f) + "." + strings.Replace(strings.ToLower(l), "ü", "u", 1) + "." + strconv.Itoa(i) + "@example.com"
		u.city = g.pick(cities)
		u.ip = strconv.Itoa(g.int(11, 223)) + "." + strconv.Itoa(g.int(0, 255)) + "." + strconv.Itoa(g.int(0, 255)) + "." + strconv.Itoa(g.int(1, 254))
		u.ua = g.pick(uas)
		g.users[i] = u
	}
	return g
}

func (g *Generator) rnd() float64 { return g.r.next() }

func (g *Generator) pick(a []string) string { return a[int(math.Floor(g.rnd()*float64(len(a))))] }

func (g *Generator) int(lo, hi int) int { return lo + int(math.Floor(g.rnd()*float64(hi-lo+1))) }

// money is Math.round((lo + rnd*(hi-lo))*100)/100; Math.round rounds
// halves up.
func (g *Generator) money(lo, hi float64) float64 {
	return math.Floor((lo+g.rnd()*(hi-lo))*100+0.5) / 100
}

func (g *Generator) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdef"[int(math.Floor(g.rnd()*16))]
	}
	return string(b)
}

func (g *Generator) uuid() string {
	a, b, c := g.hex(8), g.hex(4), g.hex(3)
	d := string("89ab"[g.int(0, 3)])
	e, f := g.hex(3), g.hex(12)
	return a + "-" + b + "-4" + c + "-" + d + e + "-" + f
}

// Kind names an event's place in the mix.
type Kind int

// The kinds of the mix.
const (
	Identify Kind = iota
	Track         // Product Viewed, Checkout Started and custom events
	Order         // Order Completed with 3 products
)

// Next appends the next event's JSON (exactly as JSON.stringify writes it
// in the script's array) to dst and returns it with the event's kind.
func (g *Generator) Next(dst []byte) ([]byte, Kind) {
	i := g.i
	g.i++
	u := &g.users[g.int(0, nUsers-1)]
	t := base + int64(i)*37 + int64(g.int(0, 30))
	r := g.rnd()
	w := writer{b: dst}
	switch {
	case r < 0.3:
		g.envelope(&w, u, "identify", t)
		w.key("traits")
		w.open()
		w.str("email", u.email)
		w.str("phone", "+14155552671")
		w.str("firstName", u.firstName)
		w.str("lastName", u.lastName)
		w.str("city", u.city)
		w.str("plan", g.pick(plans))
		w.num("loginCount", float64(g.int(1, 500)))
		w.boolean("isVerified", g.rnd() < 0.7)
		w.str("signupSource", g.pick([]string{"organic", "ads", "referral"}))
		w.close()
		w.close()
		return w.b, Identify
	case r < 0.9:
		g.envelope(&w, u, "track", t)
		g.track(&w, i)
		w.close()
		return w.b, Track
	default:
		g.envelope(&w, u, "track", t)
		w.str("event", "Order Completed")
		ps := [3]product{g.product(i), g.product(i + 1), g.product(i + 2)}
		sum := 0.0
		for _, p := range ps {
			sum += p.price * float64(p.quantity)
		}
		subtotal := math.Floor(sum*100+0.5) / 100
		w.key("properties")
		w.open()
		w.str("order_id", "ord_"+g.hex(10))
		w.str("checkout_id", "chk_"+g.hex(10))
		w.str("affiliation", "Web Store")
		w.num("subtotal", subtotal)
		w.num("shipping", g.money(0, 20))
		w.num("tax", g.money(0, 30))
		w.num("discount", 0)
		w.str("coupon", g.pick([]string{"", "SPRING10"}))
		w.num("revenue", subtotal)
		w.str("currency", g.pick(currencies))
		w.key("products")
		w.b = append(w.b, '[')
		for j, p := range ps {
			if j > 0 {
				w.b = append(w.b, ',')
			}
			w.first = true
			p.write(&w)
		}
		w.b = append(w.b, ']')
		w.first = false
		w.close()
		w.close()
		return w.b, Order
	}
}

// prop is one track property, kept in insertion order.
type prop struct {
	k string
	v func(w *writer, k string)
}

func (g *Generator) track(w *writer, i int) {
	k := g.rnd()
	nExtra := g.int(5, 10)
	var props []prop
	s := func(key, v string) prop { return prop{key, func(w *writer, k string) { w.str(k, v) }} }
	n := func(key string, v float64) prop { return prop{key, func(w *writer, k string) { w.num(k, v) }} }
	switch {
	case k < 1.0/3:
		w.str("event", "Product Viewed")
		p := g.product(i)
		props = []prop{s("product_id", p.id), s("sku", p.sku), s("name", p.name), s("category", p.category),
			s("brand", p.brand), n("price", p.price), s("url", p.url), s("image_url", p.image)}
		props = append(props, s("variant", g.pick([]string{"red", "blue", "black", "white"})), n("position", float64(g.int(1, 40))))
	case k < 2.0/3:
		w.str("event", "Checkout Started")
		props = append(props, s("order_id", "ord_"+g.hex(10)), s("checkout_id", "chk_"+g.hex(10)), s("affiliation", "Web Store"))
		props = append(props, n("shipping", g.money(0, 20)))
		props = append(props, n("tax", g.money(0, 30)))
		props = append(props, n("discount", g.money(0, 15)))
		props = append(props, s("coupon", g.pick([]string{"", "SPRING10", "WELCOME"})))
		props = append(props, n("item_count", float64(g.int(1, 6))), n("step", 1))
		props = append(props, s("payment_method", g.pick([]string{"card", "paypal", "apple_pay"})))
	default:
		w.str("event", g.pick(customEvents))
		props = append(props, s("label", "lbl_"+g.hex(4)))
		props = append(props, s("section", g.pick([]string{"header", "footer", "hero", "sidebar"})))
		props = append(props, s("experiment", "exp_"+strconv.Itoa(g.int(1, 20))))
		props = append(props, s("variant", g.pick([]string{"A", "B"})))
		props = append(props, n("duration_ms", float64(g.int(10, 60000))))
		props = append(props, n("page_depth", float64(g.int(1, 12))))
		props = append(props, s("referrer_domain", g.pick([]string{"google.com", "bing.com", "facebook.com", ""})))
		logged := g.rnd() < 0.5
		props = append(props, prop{"is_logged_in", func(w *writer, k string) { w.boolean(k, logged) }})
		props = append(props, n("session_index", float64(g.int(1, 90))))
		tag := g.pick(cats)
		props = append(props, prop{"tags", func(w *writer, k string) {
			w.key(k)
			w.b = append(w.b, `["promo",`...)
			w.b = appendString(w.b, tag)
			w.b = append(w.b, ']')
		}})
	}
	if len(props) > nExtra {
		props = props[:nExtra]
	}
	w.key("properties")
	w.open()
	for _, p := range props {
		p.v(w, p.k)
	}
	w.num("revenue", g.money(1, 500))
	w.str("currency", g.pick(currencies))
	w.close()
}

type product struct {
	id, sku, name, category, brand, url, image string
	price                                      float64
	quantity                                   int
}

func (g *Generator) product(i int) product {
	var p product
	p.id = "prod_" + strconv.Itoa(g.int(1000, 9999))
	p.sku = "SKU-" + strings.ToUpper(g.hex(6))
	brand := g.pick(brands)
	cat := g.pick(cats)
	p.name = brand + " " + cat + " Item " + strconv.Itoa(i)
	p.category = g.pick(cats)
	p.brand = g.pick(brands)
	p.price = g.money(5, 300)
	p.quantity = g.int(1, 4)
	p.url = "https://shop.example.com/p/" + g.hex(8)
	p.image = "https://cdn.example.com/img/" + g.hex(8) + ".jpg"
	return p
}

func (p product) write(w *writer) {
	w.open()
	w.str("product_id", p.id)
	w.str("sku", p.sku)
	w.str("name", p.name)
	w.str("category", p.category)
	w.str("brand", p.brand)
	w.num("price", p.price)
	w.num("quantity", float64(p.quantity))
	w.str("url", p.url)
	w.str("image_url", p.image)
	w.close()
}

func iso(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

func (g *Generator) envelope(w *writer, u *user, typ string, t int64) {
	ts := iso(t)
	w.open()
	w.str("messageId", g.uuid())
	w.str("anonymousId", u.anonymousID)
	w.str("userId", u.userID)
	w.str("type", typ)
	w.str("channel", "web")
	w.key("context")
	w.open()
	w.key("traits")
	w.open()
	w.str("email", u.email)
	w.close()
	w.str("ip", u.ip)
	w.key("library")
	w.open()
	w.str("name", "RudderLabs JavaScript SDK")
	w.str("version", "3.7.1")
	w.close()
	w.str("userAgent", u.ua)
	w.str("locale", "en-US")
	w.key("page")
	w.open()
	w.str("path", "/products")
	w.str("url", "https://shop.example.com/products")
	w.str("title", "Shop")
	w.str("referrer", "https://www.google.com/")
	w.close()
	w.close()
	w.str("originalTimestamp", ts)
	w.str("sentAt", iso(t+120))
	w.str("receivedAt", iso(t+250))
	w.str("timestamp", ts)
}

// writer appends compact JSON in insertion order, as JSON.stringify does.
type writer struct {
	b     []byte
	first bool // next member is the object's first
}

func (w *writer) open() { w.b = append(w.b, '{'); w.first = true }

func (w *writer) close() { w.b = append(w.b, '}'); w.first = false }

func (w *writer) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *writer) str(k, v string) { w.key(k); w.b = appendString(w.b, v) }

// num formats like JavaScript's Number#toString for the magnitudes the
// corpus uses (shortest round-trip decimal, no exponent).
func (w *writer) num(k string, v float64) { w.key(k); w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64) }

func (w *writer) boolean(k string, v bool) { w.key(k); w.b = strconv.AppendBool(w.b, v) }

// appendString quotes s as JSON.stringify does: only '"', '\' and control
// characters are escaped (the corpus has none of the latter); non-ASCII
// stays as UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Events returns the first n events of the corpus, each as its own JSON
// object.
func Events(n int) ([][]byte, []Kind) {
	g := New()
	evs := make([][]byte, n)
	kinds := make([]Kind, n)
	for i := range evs {
		evs[i], kinds[i] = g.Next(nil)
	}
	return evs, kinds
}

// Array writes the first n events as the script's output file: one JSON
// array.
func Array(n int) []byte {
	g := New()
	out := []byte{'['}
	for i := range n {
		if i > 0 {
			out = append(out, ',')
		}
		out, _ = g.Next(out)
	}
	return append(out, ']')
}
