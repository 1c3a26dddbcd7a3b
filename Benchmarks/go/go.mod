module benchref

go 1.19
