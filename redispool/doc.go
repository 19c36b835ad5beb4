// Package redispool lets a fleet of processes share one uQRNG token and
// one monthly quota through Redis. This first part is the shared monthly
// quota meter: one counter per UTC month, reserved on by a Lua script.
package redispool
