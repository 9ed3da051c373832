package klaviyo

import (
	"math"
	"strconv"
	"strings"
)

// E-commerce (DESIGN.md §6.3, ecommerceNames: klaviyo): spec event names
// (v1 and v2, any case) renamed to Klaviyo's standard metrics, with the
// property maps of seed 001 (Order Completed) and seed 004 (Viewed
// Product, Added to Cart, Started Checkout). Keys no table names pass
// through unchanged.

type ecomKind int

const (
	ecomNone ecomKind = iota
	ecomOrderCompleted
	ecomViewed
	ecomAdded
	ecomCheckout
	ecomRefunded
	ecomCancelled
	ecomFulfilled
)

// ecomNames are matched case-insensitively after trimming.
var ecomNames = []struct {
	name string
	kind ecomKind
}{
	{"Order Completed", ecomOrderCompleted}, {"Completed Order", ecomOrderCompleted},
	{"Product Viewed", ecomViewed}, {"Viewed Product", ecomViewed},
	{"Product Clicked", ecomViewed}, {"Clicked Product", ecomViewed},
	{"Product Added", ecomAdded}, {"Added Product", ecomAdded},
	{"Checkout Started", ecomCheckout}, {"Started Checkout", ecomCheckout},
	{"Order Refunded", ecomRefunded}, {"Refunded Order", ecomRefunded},
	{"Order Cancelled", ecomCancelled}, {"Cancelled Order", ecomCancelled},
	{"Order Canceled", ecomCancelled}, {"Canceled Order", ecomCancelled},
	{"Order Fulfilled", ecomFulfilled}, {"Fulfilled Order", ecomFulfilled},
}

func ecommerceKind(name string) ecomKind {
	for _, e := range ecomNames {
		if strings.EqualFold(name, e.name) {
			return e.kind
		}
	}
	return ecomNone
}

// rename is one row of a property table: spec key → Klaviyo key.
type rename struct{ from, to string }

// Seed 004 "Product Viewed" table.
var viewedTable = []rename{
	{"name", "ProductName"}, {"product_id", "ProductID"}, {"sku", "SKU"},
	{"image_url", "ImageURL"}, {"url", "URL"}, {"brand", "Brand"},
	{"price", "Price"}, {"compare_at_price", "CompareAtPrice"},
	{"categories", "Categories"},
}

// Seed 004 "Product Added" table (value → $value is the event value).
var addedTable = []rename{
	{"name", "AddedItemProductName"}, {"product_id", "AddedItemProductID"},
	{"sku", "AddedItemSKU"}, {"image_url", "AddedItemImageURL"},
	{"url", "AddedItemURL"}, {"price", "AddedItemPrice"},
	{"quantity", "AddedItemQuantity"}, {"categories", "AddedItemCategories"},
	{"item_names", "ItemNames"}, {"checkout_url", "CheckoutURL"},
	{"items", "Items"},
}

// Seed 004 "Checkout Started" table (order_id → $event_id is the
// unique_id, value → $value the event value).
var checkoutTable = []rename{
	{"categories", "Categories"}, {"item_names", "ItemNames"},
	{"items", "Items"}, {"checkout_url", "CheckoutURL"},
}

// Seed 004 items[] table. The seed's own example sends row_total where
// the table says total; both become RowTotal.
var itemTable = []rename{
	{"product_id", "ProductID"}, {"productId", "ProductID"}, {"sku", "SKU"}, {"name", "ProductName"},
	{"quantity", "Quantity"}, {"price", "Price"}, {"total", "RowTotal"},
	{"row_total", "RowTotal"}, {"url", "URL"}, {"image_url", "ImageURL"},
	{"categories", "ProductCategories"},
}

// Ordered Product (seed 001 and DESIGN.md §6.3): Segment's product keys,
// v1 camelCase and v2 snake_case; productUrl/imageUrl keep seed 001's
// names "Product URL"/"Image URL".
var orderedProductTable = []rename{
	{"name", "ProductName"}, {"productId", "ProductID"}, {"product_id", "ProductID"},
	{"sku", "SKU"}, {"categories", "Categories"}, {"image_url", "ImageURL"},
	{"url", "URL"}, {"quantity", "Quantity"}, {"price", "Price"},
	{"productUrl", "Product URL"}, {"imageUrl", "Image URL"},
}

// applyTable renames keys of props in place (props is the event's own
// copy). Keys the table does not name are unchanged. When two spec keys
// map to one Klaviyo key, the earlier row wins and the later key stays.
func applyTable(props map[string]any, table []rename) {
	var done uint64 // rows applied, by index (tables are short)
	for i, r := range table {
		v, ok := props[r.from]
		if !ok {
			continue
		}
		taken := false
		for j := range i {
			if done&(1<<j) != 0 && table[j].to == r.to {
				taken = true
				break
			}
		}
		if taken {
			continue
		}
		delete(props, r.from)
		props[r.to] = v
		done |= 1 << i
	}
}

// mapItems applies itemTable to every object of an items list. Without
// items, the products list becomes Items (RudderStack builds items[] from
// products, peers.md §2 "How v1 differs").
func mapItems(props map[string]any) {
	if _, has := props["Items"]; !has {
		if products, ok := props["products"].([]any); ok {
			delete(props, "products")
			props["Items"] = products
		}
	}
	items, ok := props["Items"].([]any)
	if !ok {
		return
	}
	out := make([]any, len(items))
	for i, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			out[i] = it
			continue
		}
		cp := make(map[string]any, len(obj))
		for k, v := range obj {
			cp[k] = v
		}
		applyTable(cp, itemTable)
		out[i] = cp
	}
	props["Items"] = out
}

func (m *mapper) ecommerce(name string) ([]Op, error) {
	props := m.ev.Properties
	var metric string
	switch ecommerceKind(name) {
	case ecomOrderCompleted:
		return m.orderCompleted(name)
	case ecomViewed:
		metric = "Viewed Product"
	case ecomAdded:
		metric = "Added to Cart"
	case ecomCheckout:
		metric = "Started Checkout"
	case ecomRefunded:
		metric = "Refunded Order"
	case ecomCancelled:
		metric = "Cancelled Order"
	case ecomFulfilled:
		metric = "Fulfilled Order"
	default:
		return m.plainEvent(name, name, props)
	}
	p, err := m.eventProfile()
	if err != nil {
		return nil, err
	}
	ea, err := m.eventAttributes(m.metricName(name, metric), props, false)
	if err != nil {
		return nil, err
	}
	switch metric {
	case "Viewed Product":
		applyTable(ea.Properties, viewedTable)
	case "Added to Cart":
		applyTable(ea.Properties, addedTable)
		mapItems(ea.Properties)
	case "Started Checkout":
		if v, ok := present(ea.Properties, "order_id"); ok {
			id, ok := scalarString(v)
			if !ok {
				return nil, typeErr("properties.order_id", "a string", v)
			}
			if id = strings.TrimSpace(id); id != "" {
				ea.UniqueID = id
			}
			delete(ea.Properties, "order_id")
		}
		applyTable(ea.Properties, checkoutTable)
		mapItems(ea.Properties)
	}
	m.finishProps(ea)
	return []Op{{Kind: OpEvent, Profile: p, Event: ea}}, nil
}

// orderCompleted: "Placed Order" (or "Order Completed" with
// sendPlacedOrderAsOrderCompleted) with unique_id = order id, then one
// "Ordered Product" per product with unique_id <orderId>_<product id>
// (seed 001).
func (m *mapper) orderCompleted(name string) ([]Op, error) {
	props := m.ev.Properties
	p, err := m.eventProfile()
	if err != nil {
		return nil, err
	}
	metric := "Placed Order"
	if m.s.SendPlacedOrderAsOrderCompleted {
		metric = "Order Completed"
	}
	order, err := m.eventAttributes(m.metricName(name, metric), props, true)
	if err != nil {
		return nil, err
	}
	orderID, err := idProp(props, "orderId", "order_id")
	if err != nil {
		return nil, err
	}
	// Seed 001: "eventId or orderId → $event_id".
	eventID, err := idProp(props, "eventId")
	if err != nil {
		return nil, err
	}
	switch {
	case eventID != "":
		order.UniqueID = eventID
	case orderID != "":
		order.UniqueID = orderID
	default:
		m.warn("properties.order_id is missing: Placed Order uses the messageId as unique_id, so a resend of the same order with a new messageId counts twice")
	}
	m.finishProps(order)
	ops := []Op{{Kind: OpEvent, Profile: p, Event: order}}

	raw, ok := present(props, "products")
	if !ok {
		return ops, nil
	}
	products, ok := raw.([]any)
	if !ok {
		return nil, typeErr("properties.products", "a list of products", raw)
	}
	idPrefix := orderID
	if idPrefix == "" {
		idPrefix = m.ev.MessageID
	}
	productMetric := m.metricName("Ordered Product", "Ordered Product")
	for i, rp := range products {
		field := "properties.products[" + strconv.Itoa(i) + "]"
		prod, ok := rp.(map[string]any)
		if !ok {
			m.failProduct(typeErr(field, "an object", rp))
			continue
		}
		ea, err := m.orderedProduct(prod, field, orderID)
		if err != nil {
			m.failProduct(err)
			continue
		}
		ea.Metric = productMetric
		ea.UniqueID = idPrefix + "_" + ea.UniqueID
		ea.Time = order.Time
		ea.ValueCurrency = order.ValueCurrency
		ops = append(ops, Op{Kind: OpEvent, Profile: p, Event: ea})
	}
	return ops, nil
}

// failProduct records a product whose Ordered Product event cannot be
// built: the order and the other products still go (DESIGN.md §6.3).
func (m *mapper) failProduct(err error) {
	me, ok := err.(*MapError)
	if !ok {
		me = &MapError{Code: CodeInvalidValue, Message: err.Error()}
	}
	m.failures = append(m.failures, me)
}

// idProp reads the first of keys in props as an id string.
func idProp(props map[string]any, keys ...string) (string, error) {
	k, v, ok := firstPresent(props, keys...)
	if !ok {
		return "", nil
	}
	id, ok := scalarString(v)
	if !ok {
		return "", typeErr("properties."+k, "a string", v)
	}
	return strings.TrimSpace(id), nil
}

// orderedProduct maps one product; UniqueID is set to the product's id
// (productId, product_id, id or sku, in that order) for the caller to
// prefix. The product's own fields only: the order's name or other keys
// never overwrite the product's (peers.md complaint 7).
func (m *mapper) orderedProduct(prod map[string]any, field, orderID string) (*EventAttributes, error) {
	k, v, ok := firstPresent(prod, "productId", "product_id", "id", "sku")
	pid := ""
	if ok {
		s, isStr := scalarString(v)
		if !isStr {
			return nil, typeErr(field+"."+k, "a string", v)
		}
		pid = strings.TrimSpace(s)
	}
	if pid == "" {
		return nil, &MapError{Code: CodeMissingField, Field: field,
			Message: field + " has no productId, product_id, id or sku: its Ordered Product event needs one for a deterministic unique_id"}
	}
	ea := &EventAttributes{UniqueID: pid}
	out := m.newMap(len(prod) + 2)
	for k, v := range prod {
		out[k] = v
	}
	// v1 products carry the product id as id.
	if _, hasPID := out["productId"]; !hasPID {
		if _, hasPID = out["product_id"]; !hasPID {
			if id, ok := out["id"]; ok {
				delete(out, "id")
				out["ProductID"] = id
			}
		}
	}
	// Segment's category is one string; Klaviyo's Categories is a list.
	if c, ok := out["category"]; ok {
		if _, has := out["categories"]; !has {
			delete(out, "category")
			if s, isStr := c.(string); isStr {
				out["Categories"] = []any{s}
			} else {
				out["Categories"] = c
			}
		}
	}
	applyTable(out, orderedProductTable)
	if orderID != "" {
		out["OrderId"] = orderID
	}
	if err := productValue(ea, prod, field); err != nil {
		return nil, err
	}
	ea.Properties = out
	m.finishProps(ea)
	return ea, nil
}

// productValue: price × quantity (quantity 1 when absent).
func productValue(ea *EventAttributes, prod map[string]any, field string) error {
	pv, ok := present(prod, "price")
	if !ok {
		return nil
	}
	price, ok := toNumber(pv)
	if !ok {
		return typeErr(field+".price", "a number or a numeric string", pv)
	}
	qty := 1.0
	if qv, ok := present(prod, "quantity"); ok {
		if qty, ok = toNumber(qv); !ok {
			return typeErr(field+".quantity", "a number or a numeric string", qv)
		}
	}
	// Round away float noise (0.1 × 3 = 0.30000000000000004).
	v := math.Round(price*qty*1e6) / 1e6
	ea.Value = &v
	return nil
}
