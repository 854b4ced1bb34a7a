# The two commands of the README, and the steps behind them. CMake does the real building; this
# file only names the common tasks.
#   make demo   install dependencies, build, train the demo credit model and show its metrics
#   make test   install dependencies, build (warnings as errors), run every test, then run them all
#               again under AddressSanitizer and UndefinedBehaviorSanitizer

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build build-asan demo test test-release test-asan bench clean

all: build

deps:
	bash scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DFM_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFM_SANITIZE=ON -DFM_WERROR=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

demo: deps build
	bash scripts/demo.sh

test: deps
	$(MAKE) test-release
	$(MAKE) test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

bench: deps build
	bash bench/run-train.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
