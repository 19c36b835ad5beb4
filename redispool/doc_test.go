package redispool

import _ "embed"

// packageDoc is doc.go, whose ACL lines TestACLUsers applies.
//
//go:embed doc.go
var packageDoc string
