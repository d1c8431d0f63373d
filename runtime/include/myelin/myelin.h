/* myelin/myelin.h — everything a plugin or embedding program includes. */
#ifndef MYELIN_MYELIN_H
#define MYELIN_MYELIN_H
#include "error.h"
#include "msg.h"
#include "plugin.h"
#include "io.h"
#include "npy.h"
#endif
