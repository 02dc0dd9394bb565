#!/bin/sh
echo extracted-and-ran
