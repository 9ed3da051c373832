package queue

// Crash stops renewing held messages and drops the connection without
// giving anything back, as a killed process would.
func (q *JetStream) Crash() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	<-q.done
	q.nc.Close()
}
