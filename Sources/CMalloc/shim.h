#pragma once
// glibc malloc tuning (mallopt); not exported by Swift's Glibc module.
#include <malloc.h>
