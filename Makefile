# SPDX-License-Identifier: GPL-2.0
KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build
M := $(CURDIR)/drivers/vhost

all: module
module:
	$(MAKE) -C $(KDIR) M=$(M) CONFIG_VHOST_BLK=m \
		KCPPFLAGS="-I$(CURDIR)/include" modules
clean:
	$(MAKE) -C $(KDIR) M=$(M) clean
.PHONY: all module clean
